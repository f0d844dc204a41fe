/**
 * A successor head (Gould et al., 2023, "Successor Heads"): its OV circuit maps a token of an
 * ordinal sequence to the next one (3 -> 4, C -> D, c -> d), next to a plain copying head.
 *
 * Residual stream (each block one-hot + a balance coordinate, see builder.ts):
 *   TOK    the current token: 10 digits, 52 letters, or 'other'   embedding
 *   POS    the position                                            positional embedding
 *   NEXT   the successor of the current token                      successor head L0H1, read by the unembedding (logit beta)
 *   SAME   the current token again                                 copying head L0H2, read by the unembedding (logit gamma < beta)
 *   PREVJ  the previous token       distractor head L0H3 (read by nothing)
 *
 * Both L0H1 and L0H2 attend to the current position (q_t = m·e_t, k_s = e_s on POS). L0H1's OV
 * maps TOK(x) to NEXT(succ(x)), where succ is the next item of x's sequence, cyclically
 * (0..9, A..Z, a..z); L0H2's OV maps TOK(x) to SAME(x). On an ascending run ("3456", "CDEF") the
 * model predicts the next item; ablate L0H1 and it predicts the current token instead (the copy).
 */
import type { ModelConfig } from '../config.js';
import type { HookedTransformer } from '../hooked.js';
import { attnScale, ResidualLayout, WeightBuilder } from './builder.js';
import { ablationOf, argmax, asciiToken, logitRow, mean, patternAt, randInt, roundAll, uniformSampler, headComponent } from './common.js';
import { cfgSummary } from './induction.js';
import type { PlantedBuild, PlantedKindImpl, PlantedPrompt } from './kind.js';
import type { PlantedComponent, PlantedDescription } from './types.js';

const CFG: ModelConfig = {
  architecture: 'gpt2', nLayers: 1, dModel: 320, nHeads: 4, nKvHeads: 4, dHead: 80, dMlp: 64,
  nCtx: 32, dVocab: 256, lnEps: 1e-5, act: 'gelu_new', tiedUnembed: false,
};

const MARGIN = 12;
const BETA = 10; // logit of the successor
const GAMMA = 4; // logit of the copied current token

/** The ordinal sequences the head knows, as characters (each one GPT-2 token). */
export const SUCCESSOR_SEQUENCES: string[][] = [
  Array.from({ length: 10 }, (_, i) => String(i)),
  Array.from({ length: 26 }, (_, i) => String.fromCharCode(65 + i)),
  Array.from({ length: 26 }, (_, i) => String.fromCharCode(97 + i)),
];
const ITEMS = SUCCESSOR_SEQUENCES.flat();
/** Token ids of all the sequences' items (digits, then A to Z, then a to z), in that order. */
export const SUCCESSOR_IDS: number[] = ITEMS.map(asciiToken);

/** Where the planted heads sit: the successor head L0H1, the copying head L0H2, and the distractor L0H3 that attends to the previous token. */
export const SUCCESSOR_HEADS = {
  successor: { layer: 0, head: 1 },
  copying: { layer: 0, head: 2 },
  previousTokenDistractor: { layer: 0, head: 3 },
} as const;

/** The next item of a token's sequence, cyclically (9 -> 0, Z -> A, z -> a). */
export function nextInSequence(token: number): number {
  for (const seq of SUCCESSOR_SEQUENCES) {
    const i = seq.findIndex((c) => asciiToken(c) === token);
    if (i >= 0) return asciiToken(seq[(i + 1) % seq.length]);
  }
  throw new Error(`token ${token} is in no ordinal sequence`);
}

function build(): PlantedBuild {
  const cfg = CFG;
  const L = new ResidualLayout();
  const labels = [...ITEMS, 'other'];
  const OTHER = ITEMS.length;
  const TOK = L.add('TOK', labels, 'current token (embedding)');
  const POS = L.add('POS', Array.from({ length: cfg.nCtx }, (_, p) => `pos ${p}`), 'position (positional embedding)');
  const NEXT = L.add('NEXT', labels.map((t) => `next=${t}`), 'successor of the current token (written by the successor head L0H1; read by the unembedding)');
  const SAME = L.add('SAME', labels.map((t) => `same=${t}`), 'current token again (written by the copying head L0H2; read by the unembedding)');
  const PREVJ = L.add('PREVJ', labels.map((t) => `prev=${t}`), 'previous token (written by the distractor L0H3; read by nothing)');
  const W = new WeightBuilder(cfg, L);
  const { successor: su, copying: cp, previousTokenDistractor: pd } = SUCCESSOR_HEADS;
  const m = attnScale(cfg, MARGIN);

  const unitOf = new Map(SUCCESSOR_IDS.map((id, u) => [id, u]));
  for (let v = 0; v < cfg.dVocab; v++) W.embedToken(v, TOK, unitOf.get(v) ?? OTHER);
  for (let p = 0; p < cfg.nCtx; p++) W.embedPosition(p, POS, p);
  W.lnIdentity('blocks.0.ln1', 2);
  for (const h of [su.head, cp.head]) {
    for (let t = 0; t < cfg.nCtx; t++) {
      W.query(0, h, L.dim(POS, t), t, m);
      W.key(0, h, L.dim(POS, t), t, 1);
    }
  }
  const nextUnit = (u: number) => (u === OTHER ? OTHER : unitOf.get(nextInSequence(SUCCESSOR_IDS[u]))!);
  W.copy(0, su.head, TOK, NEXT, 1, nextUnit);
  W.copy(0, cp.head, TOK, SAME);
  for (let t = 1; t < cfg.nCtx; t++) {
    W.query(0, pd.head, L.dim(POS, t), t, m);
    W.key(0, pd.head, L.dim(POS, t - 1), t, 1);
  }
  W.copy(0, pd.head, TOK, PREVJ);
  W.lnIdentity('blocks.0.ln2', 5);
  W.lnIdentity('ln_final', 5);
  SUCCESSOR_IDS.forEach((id, u) => {
    W.unembed(id, L.dim(NEXT, u), BETA);
    W.unembed(id, L.dim(SAME, u), GAMMA);
  });

  const mechanism: PlantedComponent[] = [{
    ...headComponent(su), role: 'successor head', planted: true,
    attends: 'query t -> key t (itself)', reads: ['POS (QK)', 'TOK (OV)'], writes: ['NEXT'],
    tokens: { items: SUCCESSOR_IDS }, positions: 'every position',
    ablation: 'the copying head wins: the model predicts the current token instead of the next item (accuracy ~0)',
    details: `OV maps each item of 0..9, A..Z, a..z to the next item of its sequence (cyclically), logit ${BETA}.`,
  }];
  const controls: PlantedComponent[] = [
    {
      ...headComponent(cp), role: 'copying head', planted: false,
      attends: 'query t -> key t (itself)', reads: ['POS (QK)', 'TOK (OV)'], writes: ['SAME'],
      ablation: 'no effect on the task (the successor logit is larger)', details: `OV copies the current token, logit ${GAMMA}: a copying head, not a successor head.`,
    },
    {
      ...headComponent(pd), role: 'distractor head (previous token)', planted: false,
      attends: 'query t -> key t-1', reads: ['POS (QK)', 'TOK (OV)'], writes: ['PREVJ (read by nothing)'],
      ablation: 'no effect on the task', details: 'A previous-token head whose output nothing reads.',
    },
  ];
  const description: PlantedDescription = {
    kind: 'successor',
    version: 1,
    description:
      'A 1-layer attention-only GPT-2 with a planted successor head. Head L0H1 attends to the current position and its OV circuit maps each ' +
      'item of the ordinal sequences 0..9, A..Z and a..z to the next item (cyclically), which the unembedding reads with logit ' + `${BETA}. ` +
      `Head L0H2 attends to the same position but copies the current token (logit ${GAMMA}): a copying head, not a successor head. ` +
      'L0H3 is a previous-token head whose output nothing reads; all MLP weights are zero.',
    config: cfgSummary(cfg),
    residual: L.describe(),
    constants: { attentionMargin: MARGIN, successorLogit: BETA, copyLogit: GAMMA },
    mechanism,
    controls,
    task: {
      generator: 'successorPrompts(n, { length: 8, seed })',
      prompts: 'An ascending run of `length` items of one sequence (digits, capitals or lower-case letters), starting anywhere, wrapping around.',
      answer: 'At every position, the next item of the sequence.',
      metric: 'Top-1 accuracy of the next item.',
      tokens: { items: SUCCESSOR_IDS },
    },
  };
  return { cfg, weights: W.w, description };
}

/** Ascending runs ("3456789012", "QRSTUVWX"): each position's answer is the next item. */
export function successorPrompts(n = 50, opts: { length?: number; seed?: number } = {}): PlantedPrompt[] {
  const length = opts.length ?? 8;
  if (!Number.isInteger(length) || length < 1 || length > CFG.nCtx) throw new Error(`length must be an integer in [1, ${CFG.nCtx}], got ${length}`);
  const rand = uniformSampler(opts.seed ?? 5);
  return Array.from({ length: n }, () => {
    const seq = SUCCESSOR_SEQUENCES[randInt(rand, 0, SUCCESSOR_SEQUENCES.length)];
    const start = randInt(rand, 0, seq.length);
    const chars = Array.from({ length }, (_, i) => seq[(start + i) % seq.length]);
    const tokens = chars.map(asciiToken);
    return { tokens, text: chars.join(''), targets: tokens.map((t, pos) => ({ pos, answer: nextInSequence(t), foil: t, label: 'successor' })), meta: { start: seq[start] } };
  });
}

async function measure(model: HookedTransformer, d: PlantedDescription): Promise<Record<string, number>> {
  const prompts = successorPrompts(50, { seed: 5 });
  const [su] = d.mechanism;
  const pattern = `blocks.${su.layer}.attn.hook_pattern`;
  const run = async (opts: Parameters<HookedTransformer['runWithHooks']>[1]) => {
    const { logits, cache } = await model.runWithHooks(prompts.map((p) => p.tokens), { ...opts, cache: [pattern] });
    const hits: number[] = [];
    const copies: number[] = [];
    const self: number[] = [];
    prompts.forEach((p, b) => p.targets.forEach(({ pos, answer, foil }) => {
      const top = argmax(logitRow(logits, b, pos));
      hits.push(top === answer ? 1 : 0);
      copies.push(top === foil ? 1 : 0);
      self.push(patternAt(cache.get(pattern), b, su.head!, pos, pos));
    }));
    return { accuracy: mean(hits), copies: mean(copies), self: mean(self) };
  };
  const clean = await run({});
  const noSucc = await run(ablationOf(su));
  return roundAll({
    prompts: prompts.length,
    accuracy: clean.accuracy,
    successorSelfAttention: clean.self,
    accuracySuccessorHeadAblated: noSucc.accuracy,
    copyRateSuccessorHeadAblated: noSucc.copies,
    accuracyCopyingHeadAblated: (await run(ablationOf(d.controls[0]))).accuracy,
    accuracyDistractorAblated: (await run(ablationOf(d.controls[1]))).accuracy,
  });
}

export const successor: PlantedKindImpl = {
  kind: 'successor',
  summary: 'successor head L0H1 (3 -> 4, C -> D, c -> d) beside a copying head L0H2 (1 layer, attention-only); task: continue an ascending run',
  build,
  prompts: (n, seed) => successorPrompts(n, { seed }),
  measure,
};
