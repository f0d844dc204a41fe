/**
 * Neuron to Graph (Foote et al., 2023): explain a neuron by the token patterns that make it fire.
 * Each top example (a context ending where the neuron fires) is
 *   pruned    to the shortest suffix that keeps at least half its activation,
 *   augmented by replacing each token in turn with others: a position where most replacements
 *             keep the activation is a wildcard; elsewhere the token (and the replacements that
 *             kept it firing) are what matter,
 * and the patterns go into a trie read backwards from the firing token. The trie predicts the
 * neuron's activation on new text; precision and recall of "fires" (activation at least half the
 * neuron's largest example) measure how well it explains the neuron.
 */
import { LanternError } from '../../errors.js';
import type { HookedTransformer } from '../../models/hooked.js';
import { Rng } from '../../rng.js';
import type { NeuronRef } from './stats.js';

const WILDCARD = -1;

interface TrieNode {
  children: Map<number, TrieNode>;
  /** Set where a pattern ends: its (largest) activation, relative to the neuron's largest example. */
  value?: number;
}

/** One pattern that makes a neuron fire, found from one example by pruning and token replacement. */
export interface N2GPattern {
  /** Oldest first; -1 is any token. Each position lists the tokens that keep the neuron firing there. */
  tokens: number[][];
  /** The example's activation, relative to the neuron's largest example (between 0 and 1). */
  activation: number;
}

/**
 * A neuron's N2G explanation, as {@link buildN2G} returns it: its patterns, and the trie built from
 * them that {@link predictN2G} reads to predict the neuron's activation on new text.
 */
export interface N2GModel extends NeuronRef {
  /** The largest activation among the examples: "fires" is at least half of it. */
  maxActivation: number;
  /** The distinct patterns found, strongest first. */
  patterns: N2GPattern[];
  /** The patterns merged into a trie, read backwards from the firing token. */
  trie: TrieNode;
}

/** Options for {@link buildN2G}: how examples are pruned and how many replacement tokens are tried. */
export interface N2GOptions {
  /** Replacement tokens tried per position (default 10). */
  replacements?: number;
  /** Tokens replacements are drawn from (default: the examples' own tokens and the whole vocabulary). */
  pool?: number[];
  /** Fraction of the original activation a variant must keep (default 0.5). */
  keep?: number;
  /** Seed for drawing replacement tokens (default 0). */
  seed?: number;
  /** Rows per forward pass (default 16). */
  batchSize?: number;
}

/** The neuron's activation at the last token of each row. */
async function lastActivations(model: HookedTransformer, n: NeuronRef, rows: number[][], batchSize: number): Promise<number[]> {
  const hook = `blocks.${n.layer}.mlp.hook_post`;
  const F = model.cfg.dMlp;
  const out: number[] = [];
  for (let i = 0; i < rows.length; i += batchSize) {
    const chunk = rows.slice(i, i + batchSize);
    const { cache, batch } = await model.runWithHooks(chunk, { cache: [hook], logitPositions: [0] });
    const a = cache.get(hook).f32;
    chunk.forEach((r, b) => out.push(a[(b * batch.seq + r.length - 1) * F + n.neuron]));
  }
  return out;
}

function checkNeuron(model: HookedTransformer, n: NeuronRef): void {
  const { nLayers, dMlp } = model.cfg;
  if (!Number.isInteger(n.layer) || n.layer < 0 || n.layer >= nLayers) throw new LanternError(`layer ${n.layer} outside [0, ${nLayers})`);
  if (!Number.isInteger(n.neuron) || n.neuron < 0 || n.neuron >= dMlp) throw new LanternError(`neuron ${n.neuron} outside [0, ${dMlp})`);
}

/** Builds a neuron's N2G trie from examples: token contexts whose last token is where it fires. */
export async function buildN2G(model: HookedTransformer, neuron: NeuronRef, examples: number[][], opts: N2GOptions = {}): Promise<N2GModel> {
  checkNeuron(model, neuron);
  if (examples.length === 0) throw new LanternError('N2G needs at least one example');
  const keep = opts.keep ?? 0.5;
  const batchSize = opts.batchSize ?? 16;
  const R = opts.replacements ?? 10;
  const rng = new Rng((opts.seed ?? 0) >>> 0);
  const pool = opts.pool ?? Array.from({ length: model.cfg.dVocab }, (_, i) => i);
  const original = await lastActivations(model, neuron, examples, batchSize);
  const maxActivation = Math.max(...original);
  if (!(maxActivation > 0)) throw new LanternError(`neuron L${neuron.layer}N${neuron.neuron} does not fire on any example (largest activation ${maxActivation})`);
  const patterns: N2GPattern[] = [];
  for (let e = 0; e < examples.length; e++) {
    const ex = examples[e];
    const a0 = original[e];
    if (a0 < keep * maxActivation) continue; // a weak example explains little
    // Prune: the shortest suffix keeping `keep` of the activation.
    const suffixes = Array.from({ length: ex.length }, (_, i) => ex.slice(ex.length - 1 - i));
    const acts = await lastActivations(model, neuron, suffixes, batchSize);
    const shortest = acts.findIndex((a) => a >= keep * a0);
    const pruned = suffixes[shortest < 0 ? suffixes.length - 1 : shortest];
    // Augment: each position replaced by R tokens.
    const variants: number[][] = [];
    const where: [number, number][] = [];
    pruned.forEach((tok, i) => {
      for (let r = 0; r < R; r++) {
        let x = pool[Math.floor(rng.next() * pool.length)];
        if (x === tok) x = pool[(pool.indexOf(x) + 1) % pool.length];
        const v = pruned.slice();
        v[i] = x;
        variants.push(v);
        where.push([i, x]);
      }
    });
    const vActs = await lastActivations(model, neuron, variants, batchSize);
    const kept: number[][] = pruned.map((t) => [t]);
    const keptCount = new Array<number>(pruned.length).fill(0);
    vActs.forEach((a, k) => {
      const [i, x] = where[k];
      if (a >= keep * a0) {
        keptCount[i]++;
        if (!kept[i].includes(x)) kept[i].push(x);
      }
    });
    // Most replacements keep it firing: the position does not matter.
    const tokens = kept.map((set, i) => (keptCount[i] >= 0.8 * R ? [WILDCARD] : set.sort((a, b) => a - b)));
    while (tokens.length > 1 && tokens[0][0] === WILDCARD) tokens.shift();
    patterns.push({ tokens, activation: a0 / maxActivation });
  }
  const trie: TrieNode = { children: new Map() };
  for (const p of patterns) insert(trie, p);
  return { ...neuron, maxActivation, patterns: dedupe(patterns), trie };
}

function insert(root: TrieNode, p: N2GPattern): void {
  let frontier = [root];
  for (let i = p.tokens.length - 1; i >= 0; i--) {
    const next: TrieNode[] = [];
    for (const node of frontier) {
      for (const t of p.tokens[i]) {
        let c = node.children.get(t);
        if (!c) node.children.set(t, (c = { children: new Map() }));
        next.push(c);
      }
    }
    frontier = next;
  }
  for (const node of frontier) node.value = Math.max(node.value ?? 0, p.activation);
}

function dedupe(ps: N2GPattern[]): N2GPattern[] {
  const seen = new Map<string, N2GPattern>();
  for (const p of ps) {
    const k = JSON.stringify(p.tokens);
    const old = seen.get(k);
    if (!old || old.activation < p.activation) seen.set(k, p);
  }
  return [...seen.values()].sort((a, b) => b.activation - a.activation);
}

/** The trie's predicted activation (relative to the largest example) at each position of `tokens`: the largest pattern that ends there, 0 if none. */
export function predictN2G(m: Pick<N2GModel, 'trie'>, tokens: ArrayLike<number>): Float64Array {
  const out = new Float64Array(tokens.length);
  const walk = (node: TrieNode, pos: number): number => {
    let best = node.value ?? 0;
    if (pos < 0) return best;
    for (const key of [tokens[pos], WILDCARD]) {
      const c = node.children.get(key);
      if (c) best = Math.max(best, walk(c, pos - 1));
    }
    return best;
  };
  for (let t = 0; t < tokens.length; t++) {
    let best = 0;
    for (const key of [tokens[t], WILDCARD]) {
      const c = m.trie.children.get(key);
      if (c) best = Math.max(best, walk(c, t - 1));
    }
    out[t] = best;
  }
  return out;
}

/** How well an N2G trie explains its neuron on held-out text, as {@link evaluateN2G} measures it. */
export interface N2GEvaluation {
  /** Of the positions the trie says fire, the fraction where the neuron does (1 when it predicts none). */
  precision: number;
  /** Of the positions where the neuron fires, the fraction the trie predicts (1 when it never fires). */
  recall: number;
  /** Positions where the neuron fires (activation >= half its largest example) / where the trie predicts it. */
  fired: number;
  /** Positions where the trie predicts the neuron fires (any pattern matches). */
  predicted: number;
  /** Tokens of held-out text evaluated. */
  tokens: number;
}

/**
 * Precision and recall of the trie's "fires" against the neuron's true activations on held-out
 * text, cut into rows of `seq` tokens as the statistics pass cuts its corpus.
 */
export async function evaluateN2G(model: HookedTransformer, m: N2GModel, tokens: ArrayLike<number>, opts: { seq?: number; batchSize?: number } = {}): Promise<N2GEvaluation> {
  const seq = opts.seq ?? Math.min(model.cfg.nCtx, 128);
  const hook = `blocks.${m.layer}.mlp.hook_post`;
  const F = model.cfg.dMlp;
  let tp = 0;
  let fired = 0;
  let predicted = 0;
  const rows: number[][] = [];
  for (let s = 0; s < tokens.length; s += seq) rows.push(Array.from({ length: Math.min(seq, tokens.length - s) }, (_, i) => tokens[s + i]));
  const batchSize = opts.batchSize ?? 8;
  for (let i = 0; i < rows.length; i += batchSize) {
    const chunk = rows.slice(i, i + batchSize);
    const { cache, batch } = await model.runWithHooks(chunk, { cache: [hook], logitPositions: [0] });
    const a = cache.get(hook).f32;
    chunk.forEach((r, b) => {
      const pred = predictN2G(m, r);
      for (let t = 0; t < r.length; t++) {
        const fires = a[(b * batch.seq + t) * F + m.neuron] >= 0.5 * m.maxActivation;
        const says = pred[t] > 0;
        if (fires) fired++;
        if (says) predicted++;
        if (fires && says) tp++;
      }
    });
  }
  return { precision: predicted ? tp / predicted : 1, recall: fired ? tp / fired : 1, fired, predicted, tokens: tokens.length };
}
