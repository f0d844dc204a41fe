/**
 * A host-side tensor: a typed array plus its shape. This is what every Lantern API takes and
 * returns; it maps one-to-one onto an ONNX Runtime tensor without copying.
 */
import { LanternError } from '../errors.js';
import type { DType } from './graph/ir.js';

export type TensorData = Float32Array | Float64Array | BigInt64Array | Int32Array | Uint8Array;

/** An n-dimensional array (float32, float64, int64 or bool) as Lantern's inputs and outputs: activations, logits, gradients, intervention values. */
export class Tensor {
  constructor(readonly dtype: DType, readonly data: TensorData, readonly shape: number[]) {
    const n = shape.reduce((p, q) => p * q, 1);
    if (n !== data.length) throw new LanternError(`tensor of shape [${shape}] needs ${n} values, got ${data.length}`);
  }

  /** A float32 tensor of the given shape. */
  static f32(data: Float32Array | number[], shape: number[]): Tensor {
    return new Tensor('float32', data instanceof Float32Array ? data : Float32Array.from(data), shape);
  }

  /** A float64 tensor of the given shape. */
  static f64(data: Float64Array | number[], shape: number[]): Tensor {
    return new Tensor('float64', data instanceof Float64Array ? data : Float64Array.from(data), shape);
  }

  /** An int64 tensor (token ids, indices). */
  static i64(data: number[] | BigInt64Array, shape: number[]): Tensor {
    return new Tensor('int64', data instanceof BigInt64Array ? data : BigInt64Array.from(data, (x) => BigInt(x)), shape);
  }

  /** A boolean tensor (masks). */
  static bool(data: Uint8Array | boolean[], shape: number[]): Tensor {
    return new Tensor('bool', data instanceof Uint8Array ? data : Uint8Array.from(data, (x) => (x ? 1 : 0)), shape);
  }

  /** A float32 tensor whose memory can be shared with the compute worker without copying. */
  static shared(shape: number[]): Tensor {
    const n = shape.reduce((p, q) => p * q, 1);
    return new Tensor('float32', new Float32Array(new SharedArrayBuffer(n * 4)), shape);
  }

  /** Number of elements. */
  get size(): number {
    return this.data.length;
  }

  /** A float32 tensor of the given shape. */
  get f32(): Float32Array {
    if (!(this.data instanceof Float32Array)) throw new LanternError(`expected a float32 tensor, got ${this.dtype}`);
    return this.data;
  }

  /** Row-major strides. */
  get strides(): number[] {
    const s = new Array<number>(this.shape.length);
    let acc = 1;
    for (let i = this.shape.length - 1; i >= 0; i--) { s[i] = acc; acc *= this.shape[i]; }
    return s;
  }

  /** Element at a full index (as a JS number). */
  at(...index: number[]): number {
    if (index.length !== this.shape.length) throw new LanternError(`index of rank ${index.length} for shape [${this.shape}]`);
    let o = 0;
    const st = this.strides;
    index.forEach((ix, i) => {
      if (ix < 0 || ix >= this.shape[i]) throw new LanternError(`index ${ix} out of range for dim ${i} of [${this.shape}]`);
      o += ix * st[i];
    });
    return Number(this.data[o]);
  }

  /** The sub-tensor at `index` along the leading dims (copy). */
  get(...index: number[]): Tensor {
    const st = this.strides;
    let o = 0;
    index.forEach((ix, i) => {
      if (ix < 0 || ix >= this.shape[i]) throw new LanternError(`index ${ix} out of range for dim ${i} of [${this.shape}]`);
      o += ix * st[i];
    });
    const shape = this.shape.slice(index.length);
    const n = shape.reduce((p, q) => p * q, 1);
    return new Tensor(this.dtype, this.data.slice(o, o + n), shape);
  }

  /** The same data under another shape of the same size. */
  reshape(shape: number[]): Tensor {
    return new Tensor(this.dtype, this.data, shape);
  }

  /** The elements as a plain number array. */
  toArray(): number[] {
    return Array.from(this.data as ArrayLike<number | bigint>, Number);
  }
}
