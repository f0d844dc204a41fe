/**
 * Building GPT-2 weights by hand.
 *
 * A planted model's residual stream is cut into named *blocks*. Each block is a one-hot code (one
 * coordinate per unit: a token, a position, ...) followed by one *balance* coordinate. Whatever
 * writes unit u of a block writes +1 on u and -1 on the balance coordinate, so
 *
 *   - every block sums to zero, hence every residual vector has mean zero and LayerNorm's centring
 *     does nothing;
 *   - a block holding one unit has squared norm 2, so a residual stream with `n` such blocks has
 *     variance 2n / d_model; setting that LayerNorm's weight to sigma = sqrt(2n / d_model + eps)
 *     makes the LayerNorm the identity on the designed stream (`lnIdentity`).
 *
 * With the LayerNorms out of the way, every weight is a readable map between blocks: W_Q/W_K map
 * blocks to head dimensions whose dot products are the attention scores; W_V/W_O copy one block
 * into another; MLP neurons are thresholds over a few coordinates. The matrices use GPT-2's
 * layout (Conv1D, [in, out]); `toHfTensors` names them as a Hugging Face checkpoint does.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { ModelConfig } from '../config.js';
import { toHfConfig } from '../config.js';
import { weightShapes } from '../forward.js';
import { toHfTensors } from '../weights.js';
import { truncatedGpt2Tokenizer } from '../random.js';
import { writeSafetensors, WritableTensor } from '../safetensors.js';
import type { PlantedBlock } from './types.js';

/** One named one-hot block of the residual stream (see the file comment). */
export interface Block {
  name: string;
  /** First coordinate; unit i is coordinate start + i. */
  start: number;
  /** Human-readable label of each unit (a token string, `pos 3`, ...). */
  labels: string[];
  /** The coordinate holding minus the block's sum (null: the bias coordinate, which the stream never writes). */
  balance: number | null;
  meaning: string;
}

/** The residual stream's layout: blocks laid out one after another, zero padding up to d_model. */
export class ResidualLayout {
  readonly blocks: Block[] = [];
  private next = 0;

  /** Appends a one-hot block of units (plus its balance coordinate) to the residual stream. */
  add(name: string, labels: string[], meaning: string): Block {
    const b: Block = { name, start: this.next, labels, balance: this.next + labels.length, meaning };
    this.next += labels.length + 1;
    this.blocks.push(b);
    return b;
  }

  /**
   * A coordinate the residual stream never writes (so it is 0 there, and LayerNorm's centring is
   * unchanged) but that ln_final's bias sets to 1: `unembedBias` reads it, giving the unembedding
   * a per-token bias, which GPT-2 otherwise lacks.
   */
  addBias(): Block {
    const b: Block = { name: 'BIAS', start: this.next, labels: ['1 after ln_final'], balance: null, meaning: 'always 0 in the residual stream; 1 after ln_final (its bias): a per-token logit bias' };
    this.next += 1;
    this.blocks.push(b);
    return b;
  }

  /** Coordinates used so far. */
  get used(): number {
    return this.next;
  }

  /** The residual coordinate of a block's unit. */
  dim(block: Block, unit: number): number {
    if (!Number.isInteger(unit) || unit < 0 || unit >= block.labels.length) throw new Error(`${block.name} has no unit ${unit}`);
    return block.start + unit;
  }

  /** The layout as planted.json describes it. */
  describe(): PlantedBlock[] {
    return this.blocks.map((b) => ({
      name: b.name, dims: [b.start, b.start + b.labels.length], balanceDim: b.balance, units: b.labels, meaning: b.meaning,
    }));
  }
}

/** Weights in Lantern naming, all zero until set; every setter adds, so constructions compose. */
export class WeightBuilder {
  readonly w: Record<string, Float32Array> = {};
  private readonly shapes: Record<string, number[]>;

  constructor(readonly cfg: ModelConfig, readonly layout: ResidualLayout) {
    if (layout.used > cfg.dModel) throw new Error(`layout needs ${layout.used} coordinates, d_model is ${cfg.dModel}`);
    this.shapes = weightShapes(cfg);
    for (const [name, shape] of Object.entries(this.shapes)) this.w[name] = new Float32Array(shape.reduce((p, q) => p * q, 1));
  }

  private add(name: string, i: number, j: number, v: number): void {
    const shape = this.shapes[name];
    if (!shape) throw new Error(`no weight ${name}`);
    if (shape.length === 1) {
      if (i < 0 || i >= shape[0]) throw new Error(`${name}[${i}] out of range`);
      this.w[name][i] += v;
      return;
    }
    if (i < 0 || i >= shape[0] || j < 0 || j >= shape[1]) throw new Error(`${name}[${i}, ${j}] out of range [${shape}]`);
    this.w[name][i * shape[1] + j] += v;
  }

  /** Adds v·(e_unit - e_balance) to row `row` of a [rows, d_model] matrix: a balanced write. */
  private write(name: string, row: number, block: Block, unit: number, v: number): void {
    if (block.balance === null) throw new Error(`${block.name} is not written by the residual stream`);
    this.add(name, row, this.layout.dim(block, unit), v);
    this.add(name, row, block.balance, -v);
  }

  // ---- embeddings and unembedding

  /** Sets a token embedding's coordinate. */
  embedToken(token: number, block: Block, unit: number, v = 1): void {
    this.write('embed.W_E', token, block, unit, v);
  }

  /** Sets a position embedding's coordinate. */
  embedPosition(pos: number, block: Block, unit: number, v = 1): void {
    this.write('pos_embed.W_pos', pos, block, unit, v);
  }

  /** logit[token] += v · (final normalised residual)[dim]. */
  unembed(token: number, dim: number, v: number): void {
    this.add(this.cfg.tiedUnembed ? 'embed.W_E' : 'unembed.W_U_T', token, dim, v);
  }

  /**
   * logit[token] += v at every position, through the BIAS coordinate (which ln_final's bias sets
   * to 1). Call after lnIdentity('ln_final'), which resets that bias.
   */
  unembedBias(token: number, bias: Block, v: number): void {
    this.w['ln_final.b'][bias.start] = 1;
    this.unembed(token, bias.start, v);
  }

  // ---- attention: head h of layer l. Fused W_QKV columns: [Q heads | K heads | V heads].

  private col(part: 0 | 1 | 2, h: number, i: number): number {
    if (h < 0 || h >= this.cfg.nHeads || i < 0 || i >= this.cfg.dHead) throw new Error(`head ${h} dim ${i} out of range`);
    return part * this.cfg.dModel + h * this.cfg.dHead + i;
  }

  /** q[h][i] += v · x[dim] (x = the layer's ln1 output). */
  query(l: number, h: number, dim: number, i: number, v: number): void {
    this.add(`blocks.${l}.attn.W_QKV`, dim, this.col(0, h, i), v);
  }

  /** Sets a key weight of head h in layer l. */
  key(l: number, h: number, dim: number, i: number, v: number): void {
    this.add(`blocks.${l}.attn.W_QKV`, dim, this.col(1, h, i), v);
  }

  /** Sets a value weight of head h in layer l. */
  value(l: number, h: number, dim: number, i: number, v: number): void {
    this.add(`blocks.${l}.attn.W_QKV`, dim, this.col(2, h, i), v);
  }

  /** A constant in q[h][i], whatever the input (b_Q). */
  queryBias(l: number, h: number, i: number, v: number): void {
    this.add(`blocks.${l}.attn.b_QKV`, this.col(0, h, i), 0, v);
  }

  /** Head h's z[i] is written, balanced, to `unit` of `block`, times v (a row of W_O). */
  output(l: number, h: number, i: number, block: Block, unit: number, v: number): void {
    this.write(`blocks.${l}.attn.W_O`, h * this.cfg.dHead + i, block, unit, v);
  }

  /**
   * Head h of layer l copies block `from` into block `to`, unit for unit (W_V then W_O), scaled
   * by `sign` (-1: negative copying). Uses head dimensions [0, units).
   */
  copy(l: number, h: number, from: Block, to: Block, sign = 1, map: (unit: number) => number = (u) => u): void {
    from.labels.forEach((_, u) => {
      this.value(l, h, this.layout.dim(from, u), u, 1);
      this.output(l, h, u, to, map(u), sign);
    });
  }

  // ---- MLP neuron n of layer l

  /** Sets an MLP neuron's input weight. */
  neuronIn(l: number, n: number, dim: number, v: number): void {
    this.add(`blocks.${l}.mlp.W_in`, dim, n, v);
  }

  /** Sets an MLP neuron's bias. */
  neuronBias(l: number, n: number, v: number): void {
    this.add(`blocks.${l}.mlp.b_in`, n, 0, v);
  }

  /** The neuron's activation times v is written, balanced, to `unit` of `block`. */
  neuronOut(l: number, n: number, block: Block, unit: number, v: number): void {
    this.write(`blocks.${l}.mlp.W_out`, n, block, unit, v);
  }

  // ---- LayerNorms

  /** LayerNorm weight = sigma for a stream of `nBlocks` one-unit blocks: the LayerNorm is then the identity on it. */
  lnIdentity(prefix: string, nBlocks: number): number {
    const sigma = blockSigma(this.cfg, nBlocks);
    this.w[`${prefix}.w`].fill(sigma);
    this.w[`${prefix}.b`].fill(0);
    return sigma;
  }
}

/** The standard deviation over d_model of a stream made of `nBlocks` blocks each holding one unit (eps included). */
export function blockSigma(cfg: ModelConfig, nBlocks: number): number {
  return Math.sqrt((2 * nBlocks) / cfg.dModel + cfg.lnEps);
}

/**
 * Score scale for near-hard attention: a query weight of `attnScale(cfg, margin)` against a key
 * weight of 1 on one head dimension adds `margin` to the attention score (scores are q·k/sqrt(d_head)).
 */
export function attnScale(cfg: ModelConfig, margin: number): number {
  return margin * Math.sqrt(cfg.dHead);
}

/** Hugging Face tensor names, as `save_pretrained` of a GPT2LMHeadModel writes them (with the `transformer.` prefix). */
export function gpt2HfTensors(cfg: ModelConfig, weights: Record<string, Float32Array>): Record<string, WritableTensor> {
  return Object.fromEntries(Object.entries(toHfTensors(cfg, weights)).map(([hf, t]) => [hf === 'lm_head.weight' ? hf : `transformer.${hf}`, t]));
}

/** Writes config.json, model.safetensors and tokenizer.json: an ordinary Hugging Face GPT-2 folder. */
export function writeGpt2Folder(folder: string, cfg: ModelConfig, weights: Record<string, Float32Array>, extraConfig: Record<string, unknown>): void {
  fs.mkdirSync(folder, { recursive: true });
  writeSafetensors(path.join(folder, 'model.safetensors'), gpt2HfTensors(cfg, weights), { format: 'pt' });
  // GPT-2's <|endoftext|> (50256) is outside a truncated vocabulary, so there are no bos/eos ids.
  const config = toHfConfig(cfg, { bos_token_id: null, eos_token_id: null, ...extraConfig });
  fs.writeFileSync(path.join(folder, 'config.json'), JSON.stringify(config, null, 2));
  fs.writeFileSync(path.join(folder, 'tokenizer.json'), JSON.stringify(truncatedGpt2Tokenizer(cfg.dVocab)));
}
