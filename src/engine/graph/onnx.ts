/**
 * Emits a Graph as an ONNX ModelProto (IR 10, opset 21).
 *
 * Hand-written because we only ever write a handful of message types and never read them: a
 * protobuf library would add a schema compile step and ~100 KB for ~100 lines of varint code.
 * Field numbers are from onnx/onnx.proto.
 */
import { Value, Attr, Node, Constant, onnxDType, liveNodes } from './ir.js';

/** What an ONNX graph is made of (a Graph, or a piece of one). */
export interface GraphLike {
  nodes: Node[];
  inputs: Value[];
  outputs: Value[];
  constants: Constant[];
}

export const IR_VERSION = 10;
export const OPSET = 21;

/** ONNX Runtime contrib ops we use (CPU kernels in every ORT build). */
const MICROSOFT_OPS = new Set(['FusedMatMul']);

class Writer {
  private chunks: Uint8Array[] = [];
  private scratch = new Uint8Array(10);
  length = 0;

  private push(b: Uint8Array) {
    this.chunks.push(b);
    this.length += b.length;
  }

  varint(x: number | bigint) {
    // Negative int64s are 10-byte two's complement varints (e.g. Softmax axis=-1).
    let v = BigInt.asUintN(64, BigInt(x));
    let n = 0;
    while (v >= 0x80n) {
      this.scratch[n++] = Number(v & 0x7fn) | 0x80;
      v >>= 7n;
    }
    this.scratch[n++] = Number(v);
    this.push(this.scratch.slice(0, n));
  }

  tag(field: number, wire: number) { this.varint((field << 3) | wire); }
  int(field: number, x: number | bigint) { this.tag(field, 0); this.varint(x); }
  bytes(field: number, b: Uint8Array) { this.tag(field, 2); this.varint(b.length); this.push(b); }
  string(field: number, s: string) { this.bytes(field, new TextEncoder().encode(s)); }
  message(field: number, build: (w: Writer) => void) { const w = new Writer(); build(w); this.bytes(field, w.finish()); }
  float(field: number, x: number) {
    this.tag(field, 5);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, x, true);
    this.push(b);
  }

  finish(): Uint8Array {
    const out = new Uint8Array(this.length);
    let o = 0;
    for (const c of this.chunks) { out.set(c, o); o += c.length; }
    return out;
  }
}

function valueInfo(w: Writer, field: number, v: Value) {
  w.message(field, (vi) => {
    vi.string(1, v.name);
    vi.message(2, (tp) => tp.message(1, (tt) => {
      tt.int(1, onnxDType(v.dtype));
      tt.message(2, (sh) => {
        for (const d of v.shape) sh.message(1, (dim) => (typeof d === 'number' ? dim.int(1, d) : dim.string(2, d)));
      });
    }));
  });
}

function attribute(w: Writer, name: string, a: Attr) {
  w.message(5, (at) => {
    at.string(1, name);
    if (typeof a === 'number') { at.int(3, a); at.int(20, 2); }
    else if (typeof a === 'string') { at.string(4, a); at.int(20, 3); }
    else if (Array.isArray(a)) { for (const x of a) at.int(8, x); at.int(20, 7); }
    else { for (const x of a.floats) at.float(7, x); at.int(20, 6); }
  });
}

/** Serializes a graph as an ONNX model (IR 10, opset 21), ready for ONNX Runtime. */
export function toOnnx(g: GraphLike): Uint8Array {
  const w = new Writer();
  w.int(1, IR_VERSION);
  w.string(2, 'lantern');
  w.message(7, (gw) => {
    const nodes = liveNodes(g);
    const used = new Set(nodes.flatMap((n) => n.inputs));
    for (const n of nodes) {
      gw.message(1, (nw) => {
        for (const i of n.inputs) nw.string(1, i.name);
        for (const o of n.outputs) nw.string(2, o.name);
        nw.string(4, n.op);
        if (MICROSOFT_OPS.has(n.op)) nw.string(7, 'com.microsoft');
        for (const [k, a] of Object.entries(n.attrs)) attribute(nw, k, a);
      });
    }
    gw.string(2, 'lantern');
    for (const c of g.constants) {
      if (!used.has(c.value)) continue;
      gw.message(5, (tw) => {
        for (const d of c.value.shape) tw.int(1, d as number);
        tw.int(2, onnxDType(c.value.dtype));
        tw.string(8, c.value.name);
        tw.bytes(9, new Uint8Array(c.data.buffer, c.data.byteOffset, c.data.byteLength));
      });
    }
    for (const v of g.inputs) if (used.has(v)) valueInfo(gw, 11, v);
    for (const v of g.outputs) valueInfo(gw, 12, v);
  });
  w.message(8, (ow) => { ow.string(1, ''); ow.int(2, OPSET); });
  w.message(8, (ow) => { ow.string(1, 'com.microsoft'); ow.int(2, 1); });
  return w.finish();
}
