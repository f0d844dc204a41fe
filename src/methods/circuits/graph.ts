/**
 * The computational graph of heads and MLPs (Conmy et al., 2023, ACDC; Syed et al., 2023, EAP;
 * Wang et al., 2022, path patching), as one ONNX graph in which every edge can be patched.
 *
 * Nodes that write to the residual stream are *senders*: the input (token + position embedding),
 * every attention head and every MLP. Nodes that read it are *receivers*: each head's query, key
 * and value inputs (separately, as TransformerLens's use_split_qkv_input), each MLP's input, and
 * the logits. Receiver r reads
 *
 *     x_r = resid_r + sum_s m[s, r] · (ref_s - actual_s)
 *
 * where resid_r is the residual stream the model would give it (the sum of every upstream
 * sender's actual output, plus attention output biases), ref_s a fed activation per row (usually
 * the sender's output on the corrupted prompt) and m[s, r] a per-row edge mask. m = 0 is the plain
 * model; m[s, r] = 1 patches edge s -> r alone, leaving every other reader of s untouched. The
 * mask is a float input, so d metric / d m[s, r] at m = 0 is (ref_s - actual_s) · d metric / d x_r:
 * edge attribution patching in one backward pass.
 *
 * The graph is the model's one forward pass (any family), asked for split q/k/v inputs, per-head
 * outputs and the MLP's own input copy, with a hook that records senders and adds the patched
 * edges at receivers. Each receiver gets its own norm, so the graph equals the model when m = 0.
 * Where a family normalises the attention output after summing heads (Gemma 2/3's post-attention
 * norm), heads do not write to the residual stream separately: the whole attention layer of each
 * block is then one sender, A{l}. With a parallel residual (GPT-NeoX), a block's MLP reads the
 * block's input, so that block's heads are not upstream of it.
 */
import { LanternError, nearest } from '../../errors.js';
import { Graph, Value } from '../../engine/graph/ir.js';
import { gradients } from '../../engine/autodiff/grad.js';
import { Tensor } from '../../engine/tensor.js';
import type { HookedTransformer } from '../../models/hooked.js';
import { B, T, modelInputs, positionFeeds } from '../../models/inputs.js';
import { buildForward } from '../../models/forward.js';

/** Names and indices of the senders and receivers of a model's head/MLP graph. */
export class EdgeSpace {
  readonly senders: string[] = ['input'];
  readonly receivers: string[] = [];
  /** For each receiver, how many senders (a prefix of `senders`) lie upstream of it. */
  readonly upstream: number[] = [];
  /** The sender each receiver belongs to (its node), or -1 for the logits. */
  readonly receiverNode: number[] = [];
  private readonly senderIndex = new Map<string, number>();
  private readonly receiverIndex = new Map<string, number>();
  readonly nLayers: number;
  readonly nHeads: number;
  /** Heads are senders of their own (false where a norm mixes them first: one sender per attention layer). */
  readonly headSenders: boolean;
  readonly parallel: boolean;

  constructor(cfg: { nLayers: number; nHeads: number; postNorms?: boolean; parallelResidual?: boolean }) {
    const { nLayers, nHeads: H } = cfg;
    this.nLayers = nLayers;
    this.nHeads = H;
    this.headSenders = !cfg.postNorms;
    this.parallel = Boolean(cfg.parallelResidual);
    for (let l = 0; l < nLayers; l++) {
      const before = this.senders.length;
      for (const kind of ['q', 'k', 'v']) {
        for (let h = 0; h < H; h++) {
          this.receivers.push(`L${l}H${h}.${kind}`);
          this.upstream.push(before);
          this.receiverNode.push(before + (this.headSenders ? h : 0));
        }
      }
      if (this.headSenders) for (let h = 0; h < H; h++) this.senders.push(`L${l}H${h}`);
      else this.senders.push(`A${l}`);
      this.receivers.push(`MLP${l}`);
      this.upstream.push(this.parallel ? before : this.senders.length);
      this.receiverNode.push(this.senders.length);
      this.senders.push(`MLP${l}`);
    }
    this.receivers.push('logits');
    this.upstream.push(this.senders.length);
    this.receiverNode.push(-1);
    this.senders.forEach((s, i) => this.senderIndex.set(s, i));
    this.receivers.forEach((r, i) => this.receiverIndex.set(r, i));
  }

  /** Number of senders. */
  get S(): number { return this.senders.length; }
  /** Number of receivers. */
  get R(): number { return this.receivers.length; }

  /** Index of the first receiver of layer l's attention (q of head 0); its MLP is at +3H. */
  attnBase(l: number): number { return l * (3 * this.nHeads + 1); }

  /** Index of the first sender of layer l's attention (head 0, or A{l}). */
  attnSender(l: number): number { return 1 + l * ((this.headSenders ? this.nHeads : 1) + 1); }

  /** Index of a sender by name. */
  sender(name: string): number {
    const i = this.senderIndex.get(name);
    if (i === undefined) throw new LanternError(`unknown sender '${name}'; did you mean ${nearest(name, this.senders).map((n) => `'${n}'`).join(', ')}? (senders: input, ${this.headSenders ? 'L{l}H{h}' : 'A{l}'}, MLP{l})`);
    return i;
  }

  /** Index of a receiver by name. */
  receiver(name: string): number {
    const i = this.receiverIndex.get(name);
    if (i === undefined) throw new LanternError(`unknown receiver '${name}'; did you mean ${nearest(name, this.receivers).map((n) => `'${n}'`).join(', ')}? (receivers: L{l}H{h}.q|k|v, MLP{l}, logits)`);
    return i;
  }

  /** Every edge (sender upstream of receiver), as [sender, receiver] index pairs, receivers in order. */
  edges(): [number, number][] {
    const out: [number, number][] = [];
    this.receivers.forEach((_, r) => {
      for (let s = 0; s < this.upstream[r]; s++) out.push([s, r]);
    });
    return out;
  }

  /** The name of edge (s, r), e.g. `L0H2->L1H1.k`. */
  edgeName(s: number, r: number): string {
    return `${this.senders[s]}->${this.receivers[r]}`;
  }
}

/** One prompt of an edge run: tokens, and the (position, answer, wrong) targets its metric reads. */
export interface EdgeTarget { pos: number; answer: number; wrong?: number }

/** What circuit methods measure: the logit difference of answer and foil, or the answer's log-probability. */
export type EdgeMetric = 'logit-diff' | 'logprob';

export interface EdgeRunSpec {
  /** Output every sender's activation ([rows, seq, S, d_model]), to serve as refs. */
  senders: boolean;
  /** Gradient of sum_n coef_n · metric_n wrt the mask. */
  grad: EdgeMetric | null;
}

/** Builds the edge graph. Inputs: the model's, edge.mask [rows, R, S], edge.ref [rows, seq, S, D], edge.rows, edge.targets, edge.clean_logprobs, (edge.coef). */
export function edgeGraph(model: HookedTransformer, space: EdgeSpace, spec: EdgeRunSpec): Graph {
  const { cfg } = model;
  const { dModel: D, nHeads: H, nLayers: L } = cfg;
  const g = new Graph();
  const S = space.S;
  const maskIn = g.input('edge.mask', 'float32', [B, space.R, S]);
  const mask = g.identity(maskIn); // a node of its own, so the gradient is wrt exactly what the graph reads
  const ref = g.input('edge.ref', 'float32', [B, T, S, D]);
  const actual: Value[] = []; // sender outputs so far, pieces of [rows, seq, k, D]

  /** x [rows, seq, n, D], the inputs of receivers [r0, r0 + n), plus their patched edges. */
  const receive = (x: Value, r0: number, n: number): Value => {
    const up = space.upstream[r0];
    const act = actual.length === 1 ? actual[0] : g.concat([...actual], 2); // a copy: the node keeps the array it is given
    const delta = g.sub(g.slice(ref, 2, 0, up), g.slice(act, 2, 0, up)); // [rows, seq, up, D]
    const m = g.unsqueeze(g.slice(g.slice(mask, 1, r0, r0 + n), 2, 0, up), [1]); // [rows, 1, n, up]
    return g.add(x, g.matmul(m, delta));
  };
  const one = (x: Value, r: number) => g.squeeze(receive(g.unsqueeze(x, [2]), r, 1), [2]);
  const layerOf = (name: string) => Number(/^blocks\.(\d+)\./.exec(name)?.[1]);

  const hook = (name: string, v: Value): Value => {
    if (name === 'blocks.0.hook_resid_pre') actual.push(g.unsqueeze(v, [2]));
    else if (name.endsWith('.attn.hook_result')) actual.push(v);
    else if (!space.headSenders && name.endsWith('.hook_attn_out')) actual.push(g.unsqueeze(v, [2]));
    else if (name.endsWith('.hook_mlp_out')) actual.push(g.unsqueeze(v, [2]));
    else if (/\.hook_[qkv]_input$/.test(name)) {
      const kind = 'qkv'.indexOf(name.slice(-7, -6));
      return receive(v, space.attnBase(layerOf(name)) + kind * H, H);
    } else if (name.endsWith('.hook_mlp_in')) return one(v, space.attnBase(layerOf(name)) + 3 * H);
    else if (name === `blocks.${L - 1}.hook_resid_post`) return one(v, space.R - 1);
    return v;
  };
  const wants = (name: string) => /\.hook_([qkv]_input|mlp_in)$/.test(name) || (space.headSenders && name.endsWith('.attn.hook_result'));
  const model_ = buildForward(g, cfg, modelInputs(g), hook, wants);
  const recorded = actual.reduce((n, v) => n + Number(v.shape[2]), 0);
  if (recorded !== S) throw new LanternError(`edge graph: ${recorded} sender outputs for ${S} senders`);
  if (spec.senders) g.output('edge.senders', g.concat([...actual], 2));

  const rows = g.input('edge.rows', 'int64', ['n']);
  const logits = model_.unembed(g.gather(model_.finalFlat, rows)); // [n, vocab]
  const logprobs = g.logSoftmax(logits, -1);
  const targets = g.input('edge.targets', 'int64', ['n', 2]); // answer, wrong
  const picked = g.gatherElements(logits, targets, 1); // [n, 2]
  const [la, lw] = g.split(picked, 1, [1, 1]);
  const logitDiff = g.reshape(g.sub(la, lw), [-1]);
  const answerLogprob = g.reshape(g.slice(g.gatherElements(logprobs, targets, 1), 1, 0, 1), [-1]);
  g.output('edge.logit_diff', logitDiff);
  g.output('edge.logprob', answerLogprob);
  const clean = g.input('edge.clean_logprobs', 'float32', ['n', cfg.dVocab]);
  // KL(clean || patched) per target row.
  g.output('edge.kl', g.reduceSum(g.mul(g.exp(clean), g.sub(clean, logprobs)), [1], false));
  if (spec.grad) {
    const coef = g.input('edge.coef', 'float32', ['n']);
    const objective = g.reduceSum(g.mul(coef, spec.grad === 'logit-diff' ? logitDiff : answerLogprob), [0], false);
    g.output('edge.objective', objective);
    g.output('edge.grad', gradients(g, objective, [mask])[0]);
  }
  return g;
}

/** A clean/corrupted example for edge runs. */
export interface EdgeExample {
  clean: number[];
  corrupt: number[];
  targets: EdgeTarget[];
}

export interface EdgeOutputs {
  logitDiff: Float32Array;
  logprob: Float32Array;
  kl: Float32Array;
  senders?: Tensor;
  grad?: Tensor;
  objective?: number;
}

/**
 * Runs rows of the edge graph. Row b has tokens `tokens[b]`, edge mask `masks[b]` (R x S, row
 * major) and refs `refs[b]` ([seq, S, D] or null for zeros); metric rows are each row's targets.
 */
export class EdgeRunner {
  readonly space: EdgeSpace;

  constructor(readonly model: HookedTransformer) {
    this.space = new EdgeSpace(model.cfg);
  }

  /** Runs rows of tokens with per-edge patching masks. */
  async run(rows: { tokens: number[]; mask: Float32Array | null; ref: Float32Array | null; targets: EdgeTarget[]; cleanLogprobs?: Float32Array; coef?: number[] }[], seq: number, spec: EdgeRunSpec): Promise<EdgeOutputs> {
    const { model, space } = this;
    const { dModel: D, dVocab: V } = model.cfg;
    const n = rows.length;
    const S = space.S;
    const R = space.R;
    const ids = new BigInt64Array(n * seq);
    const mask = new Float32Array(n * R * S);
    const ref = new Float32Array(n * seq * S * D);
    const flat: number[] = [];
    const tg: number[] = [];
    const coef: number[] = [];
    const nTargets = rows.reduce((a, r) => a + r.targets.length, 0);
    const clean = new Float32Array(nTargets * V);
    let t = 0;
    rows.forEach((r, b) => {
      if (r.tokens.length > seq) throw new LanternError(`row ${b} is longer than ${seq}`);
      r.tokens.forEach((x, i) => (ids[b * seq + i] = BigInt(x)));
      if (r.mask) mask.set(r.mask, b * R * S);
      if (r.ref) ref.set(r.ref.subarray(0, Math.min(r.ref.length, seq * S * D)), b * seq * S * D);
      r.targets.forEach((x, j) => {
        flat.push(b * seq + x.pos);
        tg.push(x.answer, x.wrong ?? x.answer);
        coef.push(r.coef?.[j] ?? 0);
        if (r.cleanLogprobs) clean.set(r.cleanLogprobs.subarray(j * V, (j + 1) * V), t * V);
        t++;
      });
    });
    const feeds: Record<string, Tensor> = {
      ...positionFeeds(seq),
      tokens: new Tensor('int64', ids, [n, seq]),
      'edge.mask': Tensor.f32(mask, [n, R, S]),
      'edge.ref': Tensor.f32(ref, [n, seq, S, D]),
      'edge.rows': Tensor.i64(flat, [flat.length]),
      'edge.targets': Tensor.i64(tg, [flat.length, 2]),
      'edge.clean_logprobs': Tensor.f32(clean, [flat.length, V]),
    };
    if (spec.grad) feeds['edge.coef'] = Tensor.f32(coef, [flat.length]);
    const signature = JSON.stringify({ method: 'edge-graph', cfg: model.cfg, grad: spec.grad });
    const fetch = ['edge.logit_diff', 'edge.logprob', 'edge.kl', ...(spec.senders ? ['edge.senders'] : []), ...(spec.grad ? ['edge.objective', 'edge.grad'] : [])];
    // One graph serves every run; senders are fetched only when asked for.
    const out = await model.executor.run(signature, () => edgeGraph(model, space, { senders: true, grad: spec.grad }), feeds, { weights: [model.weights], fetch });
    return {
      logitDiff: out['edge.logit_diff'].f32, logprob: out['edge.logprob'].f32, kl: out['edge.kl'].f32,
      ...(spec.senders ? { senders: out['edge.senders'] } : {}),
      ...(spec.grad ? { grad: out['edge.grad'], objective: out['edge.objective'].f32[0] } : {}),
    };
  }
}

/** Log-probs [targets, vocab] of the logits at each target, from a plain forward. */
export async function targetLogprobs(model: HookedTransformer, tokens: number[], targets: EdgeTarget[]): Promise<Float32Array> {
  const logits = await model.run([tokens]);
  const V = model.cfg.dVocab;
  const out = new Float32Array(targets.length * V);
  targets.forEach((t, j) => {
    const row = logits.f32.subarray(t.pos * V, (t.pos + 1) * V);
    let max = -Infinity;
    for (const x of row) max = Math.max(max, x);
    let z = 0;
    for (const x of row) z += Math.exp(x - max);
    const lz = max + Math.log(z);
    for (let i = 0; i < V; i++) out[j * V + i] = row[i] - lz;
  });
  return out;
}
