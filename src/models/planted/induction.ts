/**
 * Induction: a previous-token head (layer 0) and an induction head (layer 1), attention only.
 *
 * Residual stream (each block one-hot + a balance coordinate, see builder.ts):
 *   TOK   the current token (52 letters, or 'other' for any other id)        embedding
 *   POS   the position (0 .. n_ctx-1)                                         positional embedding
 *   PREV  the previous token                    written by the previous-token head L0H2
 *   CUR   the current token again               written by the distractor head L0H0 (read by nothing)
 *   OUT   the predicted next token               written by the induction head L1H1, read by the unembedding
 *   POS0  the token at position 0                written by the distractor head L1H3 (read by nothing)
 *   BIAS  0 in the stream, 1 after ln_final (its bias): logit(' ') = 2 everywhere, the default prediction
 *
 * Previous-token head L0H2:  q_t = m·e_t, k_s = e_{s+1} on POS  =>  score(t, s) = m·[s = t-1]
 *                            (position 0 can only attend to itself).  OV: TOK -> PREV.
 * Induction head L1H1:       q_t = m·TOK(t), k_s = PREV(s)  =>  score = m·[prev(s) = tok(t)],
 *                            minus m at key 0 (a constant query coordinate against POS=0), since
 *                            position 0's PREV holds its own token.  OV: TOK -> OUT.
 * Unembedding:               logit(letter) = beta · OUT(letter).
 * All MLPs are zero (gelu_new(0) = 0, b_out = 0): the model is attention-only.
 *
 * On [s_0 .. s_{L-1}, s_0 .. s_{L-1}] with distinct s_i, the query at t >= L (token s_{t-L})
 * finds the single key whose previous token is s_{t-L}, at t-L+1, and copies s_{t-L+1}: the
 * correct next token.
 */
import type { ModelConfig } from '../config.js';
import type { HookedTransformer } from '../hooked.js';
import { attnScale, ResidualLayout, WeightBuilder } from './builder.js';
import { ablationOf, argmax, LETTER_IDS, LETTERS, logitRow, mean, patternAt, prob, roundAll, sampleDistinct, SPACE, uniformSampler, headComponent } from './common.js';
import type { PlantedBuild, PlantedKindImpl, PlantedPrompt } from './kind.js';
import type { PlantedComponent, PlantedDescription } from './types.js';

const CFG: ModelConfig = {
  architecture: 'gpt2', nLayers: 2, dModel: 384, nHeads: 4, nKvHeads: 4, dHead: 96, dMlp: 64,
  nCtx: 64, dVocab: 256, lnEps: 1e-5, act: 'gelu_new', tiedUnembed: false,
};

/** Attention score margin of every planted head, and the logit of a predicted token. */
const MARGIN = 12;
const BETA = 10;
const DEFAULT_LOGIT = 2; // ' ' when nothing is predicted

/** Which heads implement the induction model's mechanism (previous-token head, induction head). */
export const INDUCTION_HEADS = {
  previousToken: { layer: 0, head: 2 },
  induction: { layer: 1, head: 1 },
  currentTokenDistractor: { layer: 0, head: 0 },
  firstTokenDistractor: { layer: 1, head: 3 },
} as const;

function build(): PlantedBuild {
  const cfg = CFG;
  const L = new ResidualLayout();
  const tokLabels = [...LETTERS, 'other'];
  const OTHER = LETTERS.length;
  const TOK = L.add('TOK', tokLabels, 'current token (embedding)');
  const POS = L.add('POS', Array.from({ length: cfg.nCtx }, (_, p) => `pos ${p}`), 'position (positional embedding)');
  const PREV = L.add('PREV', tokLabels.map((t) => `prev=${t}`), 'previous token (written by the previous-token head)');
  const CUR = L.add('CUR', tokLabels.map((t) => `cur=${t}`), 'current token again (written by the distractor L0H0; read by nothing)');
  const OUT = L.add('OUT', tokLabels.map((t) => `out=${t}`), 'predicted next token (written by the induction head; read by the unembedding)');
  const POS0 = L.add('POS0', tokLabels.map((t) => `first=${t}`), 'token at position 0 (written by the distractor L1H3; read by nothing)');
  const BIAS = L.addBias();
  const W = new WeightBuilder(cfg, L);
  const m = attnScale(cfg, MARGIN);
  const { previousToken: pt, induction: ind, currentTokenDistractor: cd, firstTokenDistractor: fd } = INDUCTION_HEADS;

  // Embeddings: token id -> its letter unit (or 'other'); position p -> POS unit p.
  const unitOf = new Map(LETTER_IDS.map((id, i) => [id, i]));
  for (let v = 0; v < cfg.dVocab; v++) W.embedToken(v, TOK, unitOf.get(v) ?? OTHER);
  for (let p = 0; p < cfg.nCtx; p++) W.embedPosition(p, POS, p);

  // Layer 0 reads TOK + POS (2 blocks): its LayerNorm is the identity there.
  W.lnIdentity('blocks.0.ln1', 2);
  // Previous-token head: head dim t is 'query position t' on the query side and 'key position t-1' on the key side.
  for (let t = 1; t < cfg.nCtx; t++) {
    W.query(pt.layer, pt.head, L.dim(POS, t), t, m);
    W.key(pt.layer, pt.head, L.dim(POS, t - 1), t, 1);
  }
  W.copy(pt.layer, pt.head, TOK, PREV);
  // Distractor: attends to itself and copies the current token into CUR, which nothing reads.
  for (let t = 0; t < cfg.nCtx; t++) {
    W.query(cd.layer, cd.head, L.dim(POS, t), t, m);
    W.key(cd.layer, cd.head, L.dim(POS, t), t, 1);
  }
  W.copy(cd.layer, cd.head, TOK, CUR);
  W.lnIdentity('blocks.0.ln2', 4); // MLP weights are zero: it writes nothing

  // Layer 1 reads TOK + POS + PREV + CUR (4 blocks).
  W.lnIdentity('blocks.1.ln1', 4);
  // Induction head: head dim u matches 'current token u' (query) with 'previous token u' (key).
  tokLabels.forEach((_, u) => {
    W.query(ind.layer, ind.head, L.dim(TOK, u), u, m);
    W.key(ind.layer, ind.head, L.dim(PREV, u), u, 1);
  });
  // Key 0 is penalised by m (a constant query coordinate against POS=0): its PREV is its own token.
  const penalty = tokLabels.length;
  W.queryBias(ind.layer, ind.head, penalty, m);
  W.key(ind.layer, ind.head, L.dim(POS, 0), penalty, -1);
  W.copy(ind.layer, ind.head, TOK, OUT);
  // Distractor: every position attends to position 0 and copies its token into POS0, which nothing reads.
  W.queryBias(fd.layer, fd.head, 0, m);
  W.key(fd.layer, fd.head, L.dim(POS, 0), 0, 1);
  W.copy(fd.layer, fd.head, TOK, POS0);
  W.lnIdentity('blocks.1.ln2', 6);

  // Final LayerNorm: identity on the 6 blocks; logits read OUT.
  W.lnIdentity('ln_final', 6);
  LETTER_IDS.forEach((id, u) => W.unembed(id, L.dim(OUT, u), BETA));
  // A default: ' ' has logit 2 everywhere, so without an induction match (first half, or ablations) ' ' is predicted.
  W.unembedBias(SPACE, BIAS, DEFAULT_LOGIT);

  const mechanism: PlantedComponent[] = [
    {
      ...headComponent(pt), role: 'previous-token head', planted: true,
      attends: 'query t -> key t-1 (position 0 -> itself)', reads: ['POS (QK)', 'TOK (OV)'], writes: ['PREV'],
      positions: 'every position t >= 1',
      ablation: 'the induction head finds no matching key and attends evenly to earlier positions: second-half accuracy collapses (to ~0: the answer occurs once in the context, other letters twice)',
      details: `QK on the positional embedding only (score margin ${MARGIN}); OV copies the token identity into PREV.`,
    },
    {
      ...headComponent(ind), role: 'induction head', planted: true,
      attends: 'query t (token x) -> the key whose previous token is x, i.e. the position after the earlier copy of x (t-L+1 in a repeated sequence of half-length L); never key 0',
      reads: ['TOK (Q, OV)', 'PREV (K)', 'POS=0 (K, penalty)'], writes: ['OUT'],
      positions: 'second-half queries t = L .. 2L-1 attend to t-L+1',
      ablation: "nothing writes OUT: every letter logit is 0 and the default ' ' is predicted; accuracy collapses to 0",
      details: `QK matches TOK(query) to PREV(key) with margin ${MARGIN}; OV copies TOK into OUT, which the unembedding reads with logit ${BETA}.`,
    },
  ];
  const controls: PlantedComponent[] = [
    {
      ...headComponent(cd), role: 'distractor head (current token)', planted: false,
      attends: 'query t -> key t (itself)', reads: ['POS (QK)', 'TOK (OV)'], writes: ['CUR (read by nothing)'],
      ablation: 'no effect on the task (only rescales LayerNorm inputs slightly)',
      details: 'Writes a full block, so ablating it changes the residual norm; nothing reads what it writes.',
    },
    {
      ...headComponent(fd), role: 'distractor head (first token)', planted: false,
      attends: 'every query -> key 0', reads: ['POS=0 (K)', 'TOK (OV)'], writes: ['POS0 (read by nothing)'],
      ablation: 'no effect on the task',
      details: 'A BOS-like attention sink pattern with an output no later component reads.',
    },
  ];
  const description: PlantedDescription = {
    kind: 'induction',
    version: 1,
    description:
      'A 2-layer attention-only GPT-2 with a planted induction circuit. Head L0H2 is a previous-token head: every position t attends to t-1 ' +
      'and copies that token into the PREV subspace. Head L1H1 is an induction head: the query (current token x) matches keys whose PREV is x, ' +
      'so on a repeated sequence it attends to the token after the earlier copy of x and copies it to the output subspace, which the unembedding ' +
      'reads. On [s, s] for a random sequence s of distinct letters, the second half is predicted (nearly) perfectly; without a match the ' +
      "model predicts ' ' (a constant logit of 2 through ln_final's bias). L0H0 and L1H3 are " +
      'distractor heads whose outputs nothing reads; all MLP weights are zero.',
    config: cfgSummary(cfg),
    residual: L.describe(),
    constants: { attentionMargin: MARGIN, logitScale: BETA, defaultLogit: DEFAULT_LOGIT },
    mechanism,
    controls,
    task: {
      generator: 'inductionPrompts(n, { half: 20, seed })',
      prompts: 'A sequence of `half` distinct random letters (tokens A-Z, a-z), repeated once: length 2·half (half <= 32).',
      answer: 'At each position t in half .. 2·half-2, the next token s_{t-half+1}: the token after the earlier copy of the current token.',
      metric: 'Top-1 accuracy over those positions (chance ~ 1/52).',
      tokens: { alphabet: LETTER_IDS },
    },
  };
  return { cfg, weights: W.w, description };
}

export function cfgSummary(cfg: ModelConfig): PlantedDescription['config'] {
  const { nLayers, dModel, nHeads, dHead, dMlp, nCtx, dVocab, tiedUnembed } = cfg;
  return { nLayers, dModel, nHeads, dHead, dMlp, nCtx, dVocab, tiedUnembed };
}

/** Repeated random letter sequences: [s, s] with `half` distinct letters. */
export function inductionPrompts(n = 50, opts: { half?: number; seed?: number } = {}): PlantedPrompt[] {
  const half = opts.half ?? 20;
  if (!Number.isInteger(half) || half < 2 || 2 * half > CFG.nCtx || half > LETTER_IDS.length) {
    throw new Error(`half must be an integer in [2, ${Math.min(CFG.nCtx / 2, LETTER_IDS.length)}], got ${half}`);
  }
  const rand = uniformSampler(opts.seed ?? 1);
  return Array.from({ length: n }, () => {
    const idx = sampleDistinct(LETTER_IDS.map((_, i) => i), half, rand);
    const s = idx.map((i) => LETTER_IDS[i]);
    const tokens = [...s, ...s];
    const targets = [];
    for (let t = half; t < 2 * half - 1; t++) targets.push({ pos: t, answer: tokens[t + 1], label: 'induction' });
    return { tokens, text: [...idx, ...idx].map((i) => LETTERS[i]).join(''), targets, meta: { half } };
  });
}

/** Top-1 accuracy and mean probability of the answers over all targets. */
export async function taskAccuracy(model: HookedTransformer, prompts: PlantedPrompt[], opts: Parameters<HookedTransformer['runWithHooks']>[1] = {}) {
  const { logits } = await model.runWithHooks(prompts.map((p) => p.tokens), opts);
  const hits: number[] = [];
  const probs: number[] = [];
  prompts.forEach((p, b) => p.targets.forEach(({ pos, answer }) => {
    const row = logitRow(logits, b, pos);
    hits.push(argmax(row) === answer ? 1 : 0);
    probs.push(prob(row, answer));
  }));
  return { accuracy: mean(hits), prob: mean(probs) };
}

async function measure(model: HookedTransformer, d: PlantedDescription): Promise<Record<string, number>> {
  const prompts = inductionPrompts(50, { half: 20, seed: 1 });
  const [pt, ind] = d.mechanism;
  const hooks = [`blocks.${pt.layer}.attn.hook_pattern`, `blocks.${ind.layer}.attn.hook_pattern`];
  const { logits, cache } = await model.runWithCache(prompts.map((p) => p.tokens), hooks);
  const hits: number[] = [];
  const probs: number[] = [];
  const prevAttn: number[] = [];
  const indAttn: number[] = [];
  prompts.forEach((p, b) => {
    const half = Number(p.meta.half);
    for (const { pos, answer } of p.targets) {
      const row = logitRow(logits, b, pos);
      hits.push(argmax(row) === answer ? 1 : 0);
      probs.push(prob(row, answer));
    }
    for (let t = 1; t < p.tokens.length; t++) prevAttn.push(patternAt(cache.get(hooks[0]), b, pt.head!, t, t - 1));
    for (let t = half; t < 2 * half; t++) indAttn.push(patternAt(cache.get(hooks[1]), b, ind.head!, t, t - half + 1));
  });
  const ablated = async (c: PlantedComponent) => (await taskAccuracy(model, prompts, ablationOf(c))).accuracy;
  return roundAll({
    prompts: prompts.length,
    half: 20,
    accuracy: mean(hits),
    meanProbCorrect: mean(probs),
    prevTokenAttention: mean(prevAttn),
    inductionAttention: mean(indAttn),
    accuracyPrevTokenHeadAblated: await ablated(pt),
    accuracyInductionHeadAblated: await ablated(ind),
    accuracyDistractorL0Ablated: await ablated(d.controls[0]),
    accuracyDistractorL1Ablated: await ablated(d.controls[1]),
    chance: 1 / LETTER_IDS.length,
  });
}

export const induction: PlantedKindImpl = {
  kind: 'induction',
  summary: 'previous-token head L0H2 + induction head L1H1 (2 layers, attention-only); task: repeated random letter sequences',
  build,
  prompts: (n, seed) => inductionPrompts(n, { seed }),
  measure,
};
