/**
 * An n-gram neuron and a positional neuron, in a 1-layer GPT-2.
 *
 * Residual stream (each block one-hot + a balance coordinate, see builder.ts):
 *   TOK     the current token (52 letters, or 'other')          embedding
 *   POS     the position                                         positional embedding
 *   PREV    the previous token                                   previous-token head L0H3
 *   FIRSTJ  the token at position 0      distractor head L0H1 (read by nothing)
 *   OUT     'e' / '.' predictions                                n-gram neuron 13 / positional neuron 40
 *   HJ, TJ  'current token is h' / 'previous token is t'         distractor neurons 5 / 27 (read by nothing)
 *   BIAS    0 in the stream, 1 after ln_final (its bias)         logit(' ') = 2 everywhere: the default prediction
 *
 * Previous-token head L0H3: q_t = m·e_t, k_s = e_{s+1} on POS; OV: TOK -> PREV (as in 'induction').
 * N-gram neuron 13:     pre = g·(TOK=h + PREV=t) - 1.5g: +g/2 exactly on the bigram "t h", else <= -g/2;
 *                       writes OUT='e' (logit beta): "th" -> "e".
 * Positional neuron 40: pre = g·[16 <= pos < 24] - g/2: fires by position only; writes OUT='.'.
 * Distractor neurons:   5 fires on the token 'h' alone, 27 on a previous 't' alone (each correlated
 *                       with the bigram); they write HJ / TJ, which nothing reads.
 * The unembedding reads only OUT and BIAS: logit(e) = beta·OUT_e, logit(.) = beta_pos·OUT_.,
 * logit(' ') = 2; every other logit is 0. All other neurons are zero (gelu_new(0) = 0).
 */
import type { ModelConfig } from '../config.js';
import type { HookedTransformer } from '../hooked.js';
import { attnScale, ResidualLayout, WeightBuilder } from './builder.js';
import { ablationOf, argmax, asciiToken, LETTER_IDS, LETTERS, logitRow, mean, patternAt, prob, randInt, roundAll, SPACE, uniformSampler } from './common.js';
import { cfgSummary } from './induction.js';
import type { PlantedBuild, PlantedKindImpl, PlantedPrompt } from './kind.js';
import type { PlantedComponent, PlantedDescription } from './types.js';

const CFG: ModelConfig = {
  architecture: 'gpt2', nLayers: 1, dModel: 256, nHeads: 4, nKvHeads: 4, dHead: 64, dMlp: 64,
  nCtx: 32, dVocab: 256, lnEps: 1e-5, act: 'gelu_new', tiedUnembed: false,
};

const MARGIN = 12;
const GAIN = 8; // neuron pre-activations are +GAIN/2 when firing, <= -GAIN/2 otherwise
const BETA = 10; // logit of 'e' after "th"
const BETA_POS = 8; // logit of '.' in the positional range
const DEFAULT_LOGIT = 2; // ' ' when nothing is predicted

/** The planted bigram "t h" -> "e", and the positional range [16, 24) -> ".". */
export const NGRAM = {
  first: asciiToken('t'),
  second: asciiToken('h'),
  predicts: asciiToken('e'),
  positionalRange: [16, 24] as [number, number],
  positionalPredicts: asciiToken('.'),
  layer: 0,
  ngramNeuron: 13,
  positionalNeuron: 40,
  currentHDistractorNeuron: 5,
  previousTDistractorNeuron: 27,
  previousTokenHead: 3,
  firstTokenDistractorHead: 1,
} as const;

function gelu(x: number): number {
  return 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));
}

function build(): PlantedBuild {
  const cfg = CFG;
  const N = NGRAM;
  const L = new ResidualLayout();
  const tokLabels = [...LETTERS, 'other'];
  const OTHER = LETTERS.length;
  const TOK = L.add('TOK', tokLabels, 'current token (embedding)');
  const POS = L.add('POS', Array.from({ length: cfg.nCtx }, (_, p) => `pos ${p}`), 'position (positional embedding)');
  const PREV = L.add('PREV', tokLabels.map((t) => `prev=${t}`), 'previous token (written by the previous-token head L0H3)');
  const FIRSTJ = L.add('FIRSTJ', tokLabels.map((t) => `first=${t}`), 'token at position 0 (written by the distractor head L0H1; read by nothing)');
  const OUT = L.add('OUT', ['out=e', 'out=.'], "predictions: 'e' (n-gram neuron), '.' (positional neuron); read by the unembedding");
  const HJ = L.add('HJ', ['cur=h'], "the current token is 'h' (distractor neuron 5; read by nothing)");
  const TJ = L.add('TJ', ['prev=t'], "the previous token is 't' (distractor neuron 27; read by nothing)");
  const BIAS = L.addBias();
  const W = new WeightBuilder(cfg, L);
  const l = N.layer;
  const m = attnScale(cfg, MARGIN);
  const letter = (id: number) => LETTER_IDS.indexOf(id);

  const unitOf = new Map(LETTER_IDS.map((id, i) => [id, i]));
  for (let v = 0; v < cfg.dVocab; v++) W.embedToken(v, TOK, unitOf.get(v) ?? OTHER);
  for (let p = 0; p < cfg.nCtx; p++) W.embedPosition(p, POS, p);

  W.lnIdentity('blocks.0.ln1', 2);
  // Previous-token head (as in 'induction').
  for (let t = 1; t < cfg.nCtx; t++) {
    W.query(l, N.previousTokenHead, L.dim(POS, t), t, m);
    W.key(l, N.previousTokenHead, L.dim(POS, t - 1), t, 1);
  }
  W.copy(l, N.previousTokenHead, TOK, PREV);
  // Distractor head: attends to position 0, writes FIRSTJ.
  W.queryBias(l, N.firstTokenDistractorHead, 0, m);
  W.key(l, N.firstTokenDistractorHead, L.dim(POS, 0), 0, 1);
  W.copy(l, N.firstTokenDistractorHead, TOK, FIRSTJ);

  // The MLP reads TOK + POS + PREV + FIRSTJ (4 blocks): ln2 is the identity there.
  W.lnIdentity('blocks.0.ln2', 4);
  const unit = 1 / gelu(GAIN / 2); // so a firing neuron writes exactly 1
  // N-gram neuron: AND of two coordinates as a threshold.
  W.neuronIn(l, N.ngramNeuron, L.dim(TOK, letter(N.second)), GAIN);
  W.neuronIn(l, N.ngramNeuron, L.dim(PREV, letter(N.first)), GAIN);
  W.neuronBias(l, N.ngramNeuron, -1.5 * GAIN);
  W.neuronOut(l, N.ngramNeuron, OUT, 0, unit);
  // Positional neuron: OR of the positions in the range.
  for (let p = N.positionalRange[0]; p < N.positionalRange[1]; p++) W.neuronIn(l, N.positionalNeuron, L.dim(POS, p), GAIN);
  W.neuronBias(l, N.positionalNeuron, -0.5 * GAIN);
  W.neuronOut(l, N.positionalNeuron, OUT, 1, unit);
  // Distractor neurons: each half of the bigram alone.
  W.neuronIn(l, N.currentHDistractorNeuron, L.dim(TOK, letter(N.second)), GAIN);
  W.neuronBias(l, N.currentHDistractorNeuron, -0.5 * GAIN);
  W.neuronOut(l, N.currentHDistractorNeuron, HJ, 0, unit);
  W.neuronIn(l, N.previousTDistractorNeuron, L.dim(PREV, letter(N.first)), GAIN);
  W.neuronBias(l, N.previousTDistractorNeuron, -0.5 * GAIN);
  W.neuronOut(l, N.previousTDistractorNeuron, TJ, 0, unit);

  // Calibrated where the n-gram fires: TOK, POS, PREV, FIRSTJ, OUT, HJ, TJ hold one unit each.
  W.lnIdentity('ln_final', 7);
  W.unembed(N.predicts, L.dim(OUT, 0), BETA);
  W.unembed(N.positionalPredicts, L.dim(OUT, 1), BETA_POS);
  W.unembedBias(SPACE, BIAS, DEFAULT_LOGIT); // the default prediction where no neuron fires

  const headC = (h: number) => ({
    component: `blocks.${l}.attn`, layer: l, head: h,
    hooks: [`blocks.${l}.attn.hook_pattern`, `blocks.${l}.attn.hook_z`, `blocks.${l}.attn.hook_result`],
  });
  const neuronC = (n: number) => ({
    component: `blocks.${l}.mlp`, layer: l, neuron: n, hooks: [`blocks.${l}.mlp.hook_pre`, `blocks.${l}.mlp.hook_post`],
  });
  const range = `${N.positionalRange[0]} <= position < ${N.positionalRange[1]}`;
  const mechanism: PlantedComponent[] = [
    {
      ...neuronC(N.ngramNeuron), role: 'n-gram neuron', planted: true,
      fires: "exactly at the 'h' of the bigram \"t h\" (current token h, previous token t)",
      reads: ['TOK=h', 'PREV=t'], writes: ["OUT='e'"],
      tokens: { first: N.first, second: N.second, predicts: N.predicts },
      positions: 'the position of the second token of each "t h"',
      ablation: "'e' is no longer predicted after \"th\"",
      details: `pre = ${GAIN}·(TOK=h + PREV=t) - ${1.5 * GAIN}; post writes 1 to OUT='e', which the unembedding reads with logit ${BETA}.`,
    },
    {
      ...neuronC(N.positionalNeuron), role: 'positional neuron', planted: true,
      fires: `by position only: ${range}`, reads: ['POS'], writes: ["OUT='.'"],
      tokens: { predicts: N.positionalPredicts }, positions: Array.from({ length: N.positionalRange[1] - N.positionalRange[0] }, (_, i) => N.positionalRange[0] + i),
      ablation: "'.' is no longer predicted in the positional range",
      details: `pre = ${GAIN}·[${range}] - ${GAIN / 2}; post writes 1 to OUT='.', which the unembedding reads with logit ${BETA_POS}.`,
    },
    {
      ...headC(N.previousTokenHead), role: 'previous-token head', planted: true,
      attends: 'query t -> key t-1 (position 0 -> itself)', reads: ['POS (QK)', 'TOK (OV)'], writes: ['PREV'],
      positions: 'every position t >= 1',
      ablation: 'the n-gram neuron no longer sees the first token of the bigram: "th" -> "e" collapses; the positional neuron is unaffected',
      details: 'Feeds the n-gram neuron its PREV=t input.',
    },
  ];
  const controls: PlantedComponent[] = [
    {
      ...neuronC(N.currentHDistractorNeuron), role: "distractor neuron ('h')", planted: false,
      fires: "whenever the current token is 'h' (also inside the bigram)", reads: ['TOK=h'], writes: ['HJ (read by nothing)'],
      ablation: 'no effect on the task', details: 'Correlated with the bigram, causally irrelevant.',
    },
    {
      ...neuronC(N.previousTDistractorNeuron), role: "distractor neuron (previous 't')", planted: false,
      fires: "whenever the previous token is 't' (also inside the bigram)", reads: ['PREV=t'], writes: ['TJ (read by nothing)'],
      ablation: 'no effect on the task', details: 'Correlated with the bigram, causally irrelevant.',
    },
    {
      ...headC(N.firstTokenDistractorHead), role: 'distractor head (first token)', planted: false,
      attends: 'every query -> key 0', reads: ['POS=0 (K)', 'TOK (OV)'], writes: ['FIRSTJ (read by nothing)'],
      ablation: 'no effect on the task', details: 'An attention-sink pattern whose output nothing reads.',
    },
  ];
  const description: PlantedDescription = {
    kind: 'ngram-neuron',
    version: 1,
    description:
      'A 1-layer GPT-2 with two planted MLP neurons. Neuron 13 of blocks.0.mlp is an n-gram neuron: it fires exactly on the second token of the ' +
      'bigram "t h" (reading the current token and the previous token, which head L0H3 moves into the residual stream) and writes the token "e". ' +
      `Neuron 40 is a positional neuron: it fires at positions ${N.positionalRange[0]}..${N.positionalRange[1] - 1} whatever the tokens and writes ".". ` +
      'Neurons 5 (fires on "h") and 27 (fires after "t") and head L0H1 are distractors whose outputs nothing reads. All other neurons are zero. ' +
      "Where no neuron fires the model predicts ' ' (a constant logit of 2 through ln_final's bias).",
    config: cfgSummary(cfg),
    residual: L.describe(),
    constants: { attentionMargin: MARGIN, neuronGain: GAIN, ngramLogit: BETA, positionalLogit: BETA_POS, defaultLogit: DEFAULT_LOGIT },
    mechanism,
    controls,
    task: {
      generator: 'ngramPrompts(n, { length: 32, bigrams: 2, seed })',
      prompts: 'Random letters (A-Z, a-z) with the bigram "t h" planted `bigrams` times at random non-overlapping places and nowhere else.',
      answer: `After each "t h": "e" (label 'ngram'). At other positions with ${range}: "." (label 'positional'). Elsewhere the default ' ' (logit 2; every other logit 0).`,
      metric: "Top-1 accuracy per label; false positives: 'e' predicted not after \"th\", '.' predicted outside the range.",
      tokens: { alphabet: LETTER_IDS, first: N.first, second: N.second, predicts: N.predicts, positionalPredicts: N.positionalPredicts },
    },
  };
  return { cfg, weights: W.w, description };
}

/** Random letters with "t h" planted `bigrams` times (and nowhere else). */
export function ngramPrompts(n = 50, opts: { length?: number; bigrams?: number; seed?: number } = {}): PlantedPrompt[] {
  const length = opts.length ?? 32;
  const bigrams = opts.bigrams ?? 2;
  if (!Number.isInteger(length) || length < 2 || length > CFG.nCtx) throw new Error(`length must be an integer in [2, ${CFG.nCtx}], got ${length}`);
  if (!Number.isInteger(bigrams) || bigrams < 0 || 2 * bigrams > length) throw new Error(`cannot plant ${bigrams} bigrams in ${length} tokens`);
  const rand = uniformSampler(opts.seed ?? 3);
  const { first, second, predicts, positionalPredicts, positionalRange: [lo, hi] } = NGRAM;
  return Array.from({ length: n }, () => {
    const tokens = Array.from({ length }, () => LETTER_IDS[randInt(rand, 0, LETTER_IDS.length)]);
    // Remove accidental bigrams, then plant the wanted ones at non-overlapping places.
    for (let t = 1; t < length; t++) while (tokens[t - 1] === first && tokens[t] === second) tokens[t] = LETTER_IDS[randInt(rand, 0, LETTER_IDS.length)];
    const starts: number[] = [];
    while (starts.length < bigrams) {
      const s = randInt(rand, 0, length - 1);
      if (starts.every((o) => Math.abs(o - s) >= 3)) starts.push(s);
    }
    for (const s of starts) { tokens[s] = first; tokens[s + 1] = second; }
    // (Planting cannot create another "t h": it writes 't' then 'h', and neither pairs with a neighbour as t-h.)
    const ends = new Set(starts.map((s) => s + 1));
    const targets = [];
    for (let t = 0; t < length; t++) {
      if (ends.has(t)) targets.push({ pos: t, answer: predicts, label: 'ngram' });
      else if (t >= lo && t < hi) targets.push({ pos: t, answer: positionalPredicts, label: 'positional' });
    }
    const text = tokens.map((id) => LETTERS[LETTER_IDS.indexOf(id)]).join('');
    return { tokens, text, targets, meta: { bigramEnds: [...ends].sort((a, b) => a - b).join(',') } };
  });
}

async function measure(model: HookedTransformer, d: PlantedDescription): Promise<Record<string, number>> {
  const prompts = ngramPrompts(50, { seed: 3 });
  const N = NGRAM;
  const post = `blocks.${N.layer}.mlp.hook_post`;
  const pattern = `blocks.${N.layer}.attn.hook_pattern`;
  const run = async (opts: Parameters<HookedTransformer['runWithHooks']>[1]) => {
    const { logits, cache } = await model.runWithHooks(prompts.map((p) => p.tokens), { ...opts, cache: [post, pattern] });
    const acc: Record<string, number[]> = { ngram: [], positional: [], ngramProb: [], ngramFalse: [], positionalFalse: [] };
    const act = cache.get(post);
    const F = act.shape[2];
    const fire: Record<string, number[]> = { ngramOn: [], ngramOff: [], posOn: [], posOff: [] };
    const prevAttn: number[] = [];
    prompts.forEach((p, b) => {
      const byPos = new Map(p.targets.map((t) => [t.pos, t]));
      for (let t = 0; t < p.tokens.length; t++) {
        const row = logitRow(logits, b, t);
        const top = argmax(row);
        const target = byPos.get(t);
        if (target) acc[target.label].push(top === target.answer ? 1 : 0);
        if (target?.label === 'ngram') acc.ngramProb.push(prob(row, N.predicts));
        else acc.ngramFalse.push(top === N.predicts ? 1 : 0);
        if (!target) acc.positionalFalse.push(top === N.positionalPredicts ? 1 : 0);
        const a = (n: number) => act.f32[(b * p.tokens.length + t) * F + n];
        (target?.label === 'ngram' ? fire.ngramOn : fire.ngramOff).push(a(N.ngramNeuron));
        (t >= N.positionalRange[0] && t < N.positionalRange[1] ? fire.posOn : fire.posOff).push(a(N.positionalNeuron));
        if (t >= 1) prevAttn.push(patternAt(cache.get(pattern), b, N.previousTokenHead, t, t - 1));
      }
    });
    return {
      ngram: mean(acc.ngram), positional: mean(acc.positional), ngramProb: mean(acc.ngramProb),
      ngramFalse: mean(acc.ngramFalse), positionalFalse: mean(acc.positionalFalse),
      ngramOn: mean(fire.ngramOn), ngramOffMax: Math.max(...fire.ngramOff), posOn: mean(fire.posOn), posOffMax: Math.max(...fire.posOff),
      prevAttn: mean(prevAttn),
    };
  };
  const clean = await run({});
  const [ng, pos, pt] = d.mechanism;
  const noNgram = await run(ablationOf(ng));
  const noPos = await run(ablationOf(pos));
  const noPrev = await run(ablationOf(pt));
  const controls = [];
  for (const c of d.controls) controls.push(await run(ablationOf(c)));
  return roundAll({
    prompts: prompts.length,
    ngramAccuracy: clean.ngram,
    ngramMeanProb: clean.ngramProb,
    ngramFalsePositiveRate: clean.ngramFalse,
    positionalAccuracy: clean.positional,
    positionalFalsePositiveRate: clean.positionalFalse,
    ngramNeuronMeanWhenBigram: clean.ngramOn,
    ngramNeuronMaxOtherwise: clean.ngramOffMax,
    positionalNeuronMeanInRange: clean.posOn,
    positionalNeuronMaxOutsideRange: clean.posOffMax,
    prevTokenAttention: clean.prevAttn,
    ngramAccuracyNgramNeuronAblated: noNgram.ngram,
    positionalAccuracyNgramNeuronAblated: noNgram.positional,
    positionalAccuracyPositionalNeuronAblated: noPos.positional,
    ngramAccuracyPositionalNeuronAblated: noPos.ngram,
    ngramAccuracyPrevTokenHeadAblated: noPrev.ngram,
    positionalAccuracyPrevTokenHeadAblated: noPrev.positional,
    ngramAccuracyControlsAblatedMin: Math.min(...controls.map((c) => c.ngram)),
    positionalAccuracyControlsAblatedMin: Math.min(...controls.map((c) => c.positional)),
  });
}

export const ngramNeuron: PlantedKindImpl = {
  kind: 'ngram-neuron',
  summary: 'n-gram neuron 13 ("t h" -> "e") and positional neuron 40 (positions 16-23 -> ".") in blocks.0.mlp, fed by previous-token head L0H3 (1 layer)',
  build,
  prompts: (n, seed) => ngramPrompts(n, { seed }),
  measure,
};
