/**
 * Causal scrubbing (Chan et al., 2022, Redwood Research): test a hypothesis that says which model
 * components compute which high-level variables from which others, by resampling everything the
 * hypothesis says does not matter.
 *
 * A hypothesis maps high-level variables to components (attention heads `L{l}H{h}`, MLPs
 * `L{l}.mlp`), and names each variable's parents: other variables of the hypothesis, or `input`
 * (the token embeddings). The output's parents are given the same way. Scrubbing computes, for a
 * base input x, the value of a node on an input x' recursively (the hypothesis treeified):
 *   - its parent variables' components take their scrubbed values on inputs drawn so that the
 *     parent variable has the same value as on x' (resampling consistent with the hypothesis);
 *   - the token embeddings are x''s own when `input` is a parent;
 *   - every other component (and the embeddings otherwise) takes its value on a random input.
 * The node's own components then compute on that residual stream. Each level runs as one batched
 * forward with 'replace' interventions at hook_embed, hook_z (per head) and hook_mlp_out.
 *
 * The score is the fraction of the loss recovered: (L_random − L_scrubbed) / (L_random − L_clean),
 * where L is the mean cross-entropy of the causal model's answer on x, L_clean the model's on x, and
 * L_random the model's on a random input (every component resampled).
 */
import { LanternError, nearest } from '../../errors.js';
import { Tensor } from '../../engine/tensor.js';
import type { HookedTransformer, Intervention } from '../../models/hooked.js';
import { Rng } from '../../rng.js';
import type { CausalInput } from './causal-model.js';
import type { AlignmentTask } from './iia.js';

/** One variable of a hypothesis: the components that compute it and what it reads. */
export interface HypothesisNode {
  /** `L{layer}H{head}` for an attention head, `L{layer}.mlp` for an MLP. */
  components: string[];
  /** Other variables of the hypothesis, and/or `input` (the token embeddings). */
  parents: string[];
}

/** A causal-scrubbing hypothesis: variables (named as in the causal model) and what the output reads. */
export interface Hypothesis {
  nodes: Record<string, HypothesisNode>;
  output: { parents: string[] };
}

/** Options of {@link causalScrub}. */
export interface ScrubOptions {
  task: AlignmentTask;
  hypothesis: Hypothesis;
  /** Base inputs scored. */
  inputs: CausalInput[];
  /** Inputs resampled from (default: `inputs`). Only ones with the base's token count are drawn. */
  pool?: CausalInput[];
  seed?: number;
  batchSize?: number;
}

/** Losses and the fraction recovered. */
export interface ScrubResult {
  method: 'causal-scrubbing';
  hypothesis: Hypothesis;
  /** (L_random − L_scrubbed) / (L_random − L_clean). */
  recovered: number;
  clean: number;
  scrubbed: number;
  random: number;
  n: number;
  seed: number;
}

interface Component { layer: number; head: number | null }

function parseComponent(model: HookedTransformer, name: string): Component {
  const { nLayers, nHeads } = model.cfg;
  const head = /^L(\d+)H(\d+)$/.exec(name);
  const mlp = /^L(\d+)\.mlp$/.exec(name);
  const layer = Number((head ?? mlp)?.[1]);
  if (!head && !mlp) throw new LanternError(`hypothesis component '${name}' is not L{layer}H{head} or L{layer}.mlp`);
  if (layer >= nLayers) throw new LanternError(`hypothesis component '${name}': layer ${layer} outside [0, ${nLayers})`);
  if (head && Number(head[2]) >= nHeads) throw new LanternError(`hypothesis component '${name}': head ${head[2]} outside [0, ${nHeads})`);
  return { layer, head: head ? Number(head[2]) : null };
}

/** Checks a hypothesis against the model and the causal model (names, cycles, components claimed twice). */
export function checkHypothesis(model: HookedTransformer, task: AlignmentTask, h: Hypothesis): void {
  if (!h || typeof h.nodes !== 'object' || !h.output || !Array.isArray(h.output.parents)) throw new LanternError('hypothesis needs "nodes" (variable -> {components, parents}) and "output": {"parents": [...]}');
  const names = Object.keys(h.nodes);
  const owner = new Map<string, string>();
  for (const [v, node] of Object.entries(h.nodes)) {
    task.causalModel.checkVariable(v);
    if (!Array.isArray(node.components) || node.components.length === 0) throw new LanternError(`hypothesis variable '${v}' needs at least one component`);
    for (const c of node.components) {
      parseComponent(model, c);
      if (owner.has(c)) throw new LanternError(`component ${c} is claimed by both '${owner.get(c)}' and '${v}'`);
      owner.set(c, v);
    }
  }
  const checkParents = (who: string, parents: string[]) => {
    if (!Array.isArray(parents)) throw new LanternError(`hypothesis ${who}: "parents" must be a list`);
    for (const p of parents) if (p !== 'input' && !(p in h.nodes)) throw new LanternError(`hypothesis ${who}: unknown parent '${p}' (use 'input' or one of ${[...names, 'input'].map((n) => `'${n}'`).join(', ')}${names.length ? `; nearest: '${nearest(p, [...names, 'input'], 1)[0]}'` : ''})`);
  };
  for (const [v, node] of Object.entries(h.nodes)) checkParents(`variable '${v}'`, node.parents);
  checkParents('output', h.output.parents);
  const seen = new Set<string>();
  const visit = (v: string, path: string[]) => {
    if (path.includes(v)) throw new LanternError(`hypothesis variables form a cycle: ${[...path, v].join(' -> ')}`);
    if (seen.has(v)) return;
    for (const p of h.nodes[v].parents) if (p !== 'input') visit(p, [...path, v]);
    seen.add(v);
  };
  names.forEach((v) => visit(v, []));
}

/** Scrubs `hypothesis` on `inputs` and reports the fraction of the loss it recovers. */
export async function causalScrub(model: HookedTransformer, opts: ScrubOptions): Promise<ScrubResult> {
  const { task, hypothesis } = opts;
  checkHypothesis(model, task, hypothesis);
  if (!Array.isArray(opts.inputs) || opts.inputs.length === 0) throw new LanternError('causal scrubbing needs at least one input');
  const seed = opts.seed ?? 0;
  const rng = new Rng(seed);
  const pool = opts.pool ?? opts.inputs;
  const tokensOf = new Map<CausalInput, number[]>();
  const tok = (x: CausalInput) => { let t = tokensOf.get(x); if (!t) { t = task.tokens(x); tokensOf.set(x, t); } return t; };
  const byLength = new Map<number, CausalInput[]>();
  for (const x of pool) { const n = tok(x).length; byLength.set(n, [...(byLength.get(n) ?? []), x]); }
  const values = new Map<CausalInput, Record<string, unknown>>();
  const valueOf = (x: CausalInput, v: string) => { let r = values.get(x); if (!r) { r = task.causalModel.run(x); values.set(x, r); } return JSON.stringify(r[v]); };
  const randomLike = (x: CausalInput) => {
    const same = byLength.get(tok(x).length);
    if (!same) throw new LanternError(`no input of ${tok(x).length} tokens in the resampling pool`);
    return same[rng.int(same.length)];
  };
  const consistent = (x: CausalInput, v: string) => {
    const want = valueOf(x, v);
    const same = (byLength.get(tok(x).length) ?? []).filter((y) => valueOf(y, v) === want);
    return same.length ? same[rng.int(same.length)] : x;
  };

  const { nLayers: L, nHeads: H } = model.cfg;
  const components = Object.entries(hypothesis.nodes).flatMap(([v, n]) => n.components.map((c) => ({ v, ...parseComponent(model, c) })));
  const zHook = (l: number) => `blocks.${l}.attn.hook_z`;
  const mlpHook = (l: number) => `blocks.${l}.hook_mlp_out`;
  const allHooks = ['hook_embed', ...Array.from({ length: L }, (_, l) => [zHook(l), mlpHook(l)]).flat()];
  const batchSize = opts.batchSize ?? 64;

  /** Activations of every component hook on `xs`, with `interventions`, and the logits at each last position. */
  const run = async (xs: CausalInput[], ivs: Intervention[], cache: string[]) => {
    const rows = xs.map(tok);
    return model.runWithHooks(rows, { interventions: ivs, cache, logitPositions: rows.map((r) => [r.length - 1]) });
  };

  /**
   * Scrubbed run of node `who` (a variable, or the output) on `xs`: returns its components' hook
   * activations (or, for the output, the logits).
   */
  const scrubbed = async (who: string | null, xs: CausalInput[]): Promise<{ cache: Map<string, Tensor>; logits: Tensor }> => {
    const parents = who === null ? hypothesis.output.parents : hypothesis.nodes[who].parents;
    const random = await run(xs.map(randomLike), [], allHooks);
    const fromParent = new Map<string, Map<string, Tensor>>();
    for (const p of parents) if (p !== 'input') fromParent.set(p, (await scrubbed(p, xs.map((x) => consistent(x, p)))).cache);
    const own = (l: number, head: number | null) => components.some((c) => c.v === who && c.layer === l && c.head === head);
    const ivs: Intervention[] = [];
    if (!parents.includes('input')) ivs.push({ hook: 'hook_embed', op: 'replace', value: random.cache.get('hook_embed') });
    for (let l = 0; l < L; l++) {
      const z = random.cache.get(zHook(l)).f32.slice();
      const zShape = random.cache.get(zHook(l)).shape;
      const [, T, , dh] = zShape;
      for (const c of components.filter((c) => c.layer === l && c.head !== null && fromParent.has(c.v))) {
        const src = fromParent.get(c.v)!.get(zHook(l))!.f32;
        for (let b = 0; b < xs.length; b++) for (let t = 0; t < T; t++) {
          const o = ((b * T + t) * H + c.head!) * dh;
          z.set(src.subarray(o, o + dh), o);
        }
      }
      const heads = Array.from({ length: H }, (_, h) => h).filter((h) => !own(l, h));
      if (heads.length) ivs.push({ hook: zHook(l), op: 'replace', value: Tensor.f32(z, zShape), heads: heads.length < H ? heads : undefined });
      if (!own(l, null)) {
        const owner = components.find((c) => c.layer === l && c.head === null && fromParent.has(c.v));
        ivs.push({ hook: mlpHook(l), op: 'replace', value: owner ? fromParent.get(owner.v)!.get(mlpHook(l))! : random.cache.get(mlpHook(l)) });
      }
    }
    const mine = who === null ? [] : [...new Set(hypothesis.nodes[who].components.map((c) => { const p = parseComponent(model, c); return p.head === null ? mlpHook(p.layer) : zHook(p.layer); }))];
    // A parent's values are read by its children at every hook it owns; cache all, so children read the ones they need.
    const res = await run(xs, ivs, mine);
    return { cache: new Map(mine.map((n) => [n, res.cache.get(n)])), logits: res.logits };
  };

  const V = model.cfg.dVocab;
  const crossEntropy = (logits: Tensor, xs: CausalInput[]) => xs.reduce((sum, x, b) => {
    const row = logits.f32.subarray(b * V, (b + 1) * V);
    let max = -Infinity;
    for (const z of row) max = Math.max(max, z);
    let z = 0;
    for (const y of row) z += Math.exp(y - max);
    return sum + (Math.log(z) + max - row[task.answer(task.causalModel.output(x))]);
  }, 0);

  let clean = 0, scrub = 0, random = 0;
  for (let c0 = 0; c0 < opts.inputs.length; c0 += batchSize) {
    const xs = opts.inputs.slice(c0, c0 + batchSize);
    clean += crossEntropy((await run(xs, [], [])).logits, xs);
    random += crossEntropy((await run(xs.map(randomLike), [], [])).logits, xs);
    scrub += crossEntropy((await scrubbed(null, xs)).logits, xs);
  }
  const n = opts.inputs.length;
  const [lc, ls, lr] = [clean / n, scrub / n, random / n];
  if (!(Math.abs(lr - lc) > 1e-9)) throw new LanternError('resampling every input does not change the loss: nothing to recover (are the inputs all alike?)');
  return { method: 'causal-scrubbing', hypothesis, recovered: (lr - ls) / (lr - lc), clean: lc, scrubbed: ls, random: lr, n, seed };
}
