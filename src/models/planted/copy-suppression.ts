/**
 * Copy suppression in miniature: a copying head proposes a token from the context, and a later
 * head attends to where that proposed token occurs and writes it negatively (McDougall et al.,
 * 2023, "Copy Suppression", L10H7 of GPT-2 small).
 *
 * Residual stream (each block one-hot + a balance coordinate, see builder.ts):
 *   TOK    the current token (52 letters, or 'other')            embedding
 *   POS    the position                                           positional embedding
 *   OUT    proposed next token(s), signed                         copying head L0H1 (+), suppression head L1H2 (-)
 *   PREVJ  the previous token    distractor L0H3 (read by nothing)
 *   CURJ   the current token     distractor L1H0 (read by nothing)
 *
 * Direct path:           logit(succ(x)) += gamma when the current token is x (succ: the next letter
 *                        in A..Z a..z, cyclically). This is the task's right answer.
 * Copying head L0H1:     every query attends to position 0 (constant query against POS=0) and
 *                        copies its token s_0 into OUT: logit(s_0) += beta (> gamma).
 * Suppression head L1H2: q = m_copy·OUT + m_self·TOK, k = TOK. The query is "the token being
 *                        proposed" (strongly) or "my own token" (weakly), so it attends to the
 *                        position of the proposed token (position 0); OV copies TOK into OUT with
 *                        sign -1: logit(s_0) -= beta. With nothing proposed it attends to itself.
 *
 * Clean: s_0's logit is ~0 and the model predicts succ(s_t). Ablate the suppression head: s_0
 * wins at every position (a copying error). Ablate the copying head: the suppression head has
 * nothing to suppress (it falls back to its own token) and the prediction is unchanged — the
 * copying head's direct effect is large but its total effect is ~0.
 */
import type { ModelConfig } from '../config.js';
import type { HookedTransformer } from '../hooked.js';
import { attnScale, ResidualLayout, WeightBuilder } from './builder.js';
import { ablationOf, argmax, LETTER_IDS, LETTERS, logitRow, mean, patternAt, roundAll, sampleDistinct, uniformSampler, headComponent, tokenDistractors } from './common.js';
import { cfgSummary } from './induction.js';
import type { PlantedBuild, PlantedKindImpl, PlantedPrompt } from './kind.js';
import type { PlantedComponent, PlantedDescription } from './types.js';

const CFG: ModelConfig = {
  architecture: 'gpt2', nLayers: 2, dModel: 256, nHeads: 4, nKvHeads: 4, dHead: 64, dMlp: 64,
  nCtx: 32, dVocab: 256, lnEps: 1e-5, act: 'gelu_new', tiedUnembed: false,
};

const MARGIN = 12; // copying head and distractors
const M_COPY = 20; // suppression head: score for the proposed token's position
const M_SELF = 8; //                    score for its own position (fallback)
const BETA = 10; // logit of a copied token
const GAMMA = 5; // logit of the direct-path successor

/** Which heads implement the copy-suppression model's mechanism. */
export const COPY_SUPPRESSION_HEADS = {
  copying: { layer: 0, head: 1 },
  suppression: { layer: 1, head: 2 },
  previousTokenDistractor: { layer: 0, head: 3 },
  currentTokenDistractor: { layer: 1, head: 0 },
} as const;

/** The next letter: A->B, ..., Z->a, ..., z->A. */
export function successor(token: number): number {
  const i = LETTER_IDS.indexOf(token);
  if (i < 0) throw new Error(`token ${token} is not a letter`);
  return LETTER_IDS[(i + 1) % LETTER_IDS.length];
}

function build(): PlantedBuild {
  const cfg = CFG;
  const L = new ResidualLayout();
  const tokLabels = [...LETTERS, 'other'];
  const OTHER = LETTERS.length;
  const TOK = L.add('TOK', tokLabels, 'current token (embedding)');
  const POS = L.add('POS', Array.from({ length: cfg.nCtx }, (_, p) => `pos ${p}`), 'position (positional embedding)');
  const OUT = L.add('OUT', tokLabels.map((t) => `out=${t}`), 'proposed next token, signed: + from the copying head, - from the suppression head (read by the unembedding and by the suppression head\'s query)');
  const PREVJ = L.add('PREVJ', tokLabels.map((t) => `prev=${t}`), 'previous token (written by the distractor L0H3; read by nothing)');
  const CURJ = L.add('CURJ', tokLabels.map((t) => `cur=${t}`), 'current token again (written by the distractor L1H0; read by nothing)');
  const W = new WeightBuilder(cfg, L);
  const { copying: cp, suppression: sp, previousTokenDistractor: pd, currentTokenDistractor: cd } = COPY_SUPPRESSION_HEADS;

  const unitOf = new Map(LETTER_IDS.map((id, i) => [id, i]));
  for (let v = 0; v < cfg.dVocab; v++) W.embedToken(v, TOK, unitOf.get(v) ?? OTHER);
  for (let p = 0; p < cfg.nCtx; p++) W.embedPosition(p, POS, p);

  // Layer 0 reads TOK + POS.
  W.lnIdentity('blocks.0.ln1', 2);
  // Copying head: a constant query coordinate meets POS=0 on the key side: every query attends to position 0.
  W.queryBias(cp.layer, cp.head, 0, attnScale(cfg, MARGIN));
  W.key(cp.layer, cp.head, L.dim(POS, 0), 0, 1);
  W.copy(cp.layer, cp.head, TOK, OUT, +1);
  // Distractor: a previous-token head whose output (PREVJ) nothing reads.
  for (let t = 1; t < cfg.nCtx; t++) {
    W.query(pd.layer, pd.head, L.dim(POS, t), t, attnScale(cfg, MARGIN));
    W.key(pd.layer, pd.head, L.dim(POS, t - 1), t, 1);
  }
  W.copy(pd.layer, pd.head, TOK, PREVJ);
  W.lnIdentity('blocks.0.ln2', 4);

  // Layer 1 reads TOK + POS + OUT + PREVJ.
  W.lnIdentity('blocks.1.ln1', 4);
  // Suppression head: head dim u is 'token u': the query holds m_copy·(u is proposed) + m_self·(u is my token),
  // the key holds (the key's token is u).
  tokLabels.forEach((_, u) => {
    W.query(sp.layer, sp.head, L.dim(OUT, u), u, attnScale(cfg, M_COPY));
    W.query(sp.layer, sp.head, L.dim(TOK, u), u, attnScale(cfg, M_SELF));
    W.key(sp.layer, sp.head, L.dim(TOK, u), u, 1);
  });
  W.copy(sp.layer, sp.head, TOK, OUT, -1);
  // Distractor: attends to itself, writes CURJ.
  for (let t = 0; t < cfg.nCtx; t++) {
    W.query(cd.layer, cd.head, L.dim(POS, t), t, attnScale(cfg, MARGIN));
    W.key(cd.layer, cd.head, L.dim(POS, t), t, 1);
  }
  W.copy(cd.layer, cd.head, TOK, CURJ);
  // After layer 1, OUT has cancelled to ~0: TOK, POS, PREVJ, CURJ remain.
  W.lnIdentity('blocks.1.ln2', 4);
  W.lnIdentity('ln_final', 4);
  LETTER_IDS.forEach((id, u) => {
    W.unembed(id, L.dim(OUT, u), BETA); // the proposed-token channel
    W.unembed(successor(id), L.dim(TOK, u), GAMMA); // the direct path: current token x -> succ(x)
  });

  const mechanism: PlantedComponent[] = [
    {
      ...headComponent(cp), role: 'copying head', planted: true,
      attends: 'every query -> key 0', reads: ['POS=0 (K)', 'TOK (OV)'], writes: ['OUT (+s_0)'],
      positions: 'all positions attend to position 0 and copy s_0 (the first token of the prompt)',
      ablation: 'total effect ~0: with nothing proposed, the suppression head stops attending to position 0 and stops suppressing (accuracy unchanged, s_0 logit unchanged); direct effect on logit(s_0) is +beta',
      details: `Raises logit(s_0) by ${BETA} at every position (more than the direct path's ${GAMMA} for the right answer).`,
    },
    {
      ...headComponent(sp), role: 'copy-suppression head', planted: true,
      attends: 'query t -> the position of the token OUT proposes (position 0); with nothing proposed -> itself',
      reads: ['OUT (Q)', 'TOK (Q fallback, K, OV)'], writes: ['OUT (-s_0)'],
      positions: 'queries t >= 1 attend to position 0',
      ablation: 'the copied token s_0 is no longer suppressed and becomes the top prediction: accuracy collapses',
      details: `QK: ${M_COPY}·[key token is proposed] + ${M_SELF}·[key token = my token]; OV: negative copying (TOK -> -OUT), logit(s_0) -= ${BETA}.`,
    },
  ];
  const controls = tokenDistractors(pd, cd);
  const description: PlantedDescription = {
    kind: 'copy-suppression',
    version: 1,
    description:
      'A 2-layer attention-only GPT-2 with copy suppression in miniature. The direct path predicts the next letter after the current one ' +
      `(logit ${GAMMA}). Head L0H1 is a copying head: every position attends to position 0 and raises the logit of the token there (s_0) by ${BETA}, ` +
      'which alone would make the model predict s_0. Head L1H2 is a copy-suppression head: its query reads which token is being proposed, its key ' +
      'reads token identity, so it attends to where the proposed token occurs (position 0) and writes that token negatively, cancelling the copy. ' +
      'Ablating L1H2 makes the model predict s_0 everywhere; ablating L1H0 or L0H3 (distractors) changes nothing; ablating the copying head ' +
      'changes nothing either, because the suppression head then suppresses nothing (large direct effect, ~zero total effect).',
    config: cfgSummary(cfg),
    residual: L.describe(),
    constants: { attentionMargin: MARGIN, suppressionProposedScore: M_COPY, suppressionSelfScore: M_SELF, copyLogit: BETA, successorLogit: GAMMA },
    mechanism,
    controls,
    task: {
      generator: 'copySuppressionPrompts(n, { length: 16, seed })',
      prompts: '`length` distinct random letters (A-Z, a-z).',
      answer: 'At each position t >= 1, the successor letter of the current token (A->B, ..., Z->a, z->A); the foil is s_0, the copied token. Positions where the successor is s_0 are not targets.',
      metric: 'Top-1 accuracy of the successor; the logit of s_0 (suppressed: ~0; unsuppressed: ~beta).',
      tokens: { alphabet: LETTER_IDS },
    },
  };
  return { cfg, weights: W.w, description };
}

/** Random distinct letters; targets at t >= 1: the successor of s_t, with s_0 (the copied token) as foil. */
export function copySuppressionPrompts(n = 50, opts: { length?: number; seed?: number } = {}): PlantedPrompt[] {
  const length = opts.length ?? 16;
  if (!Number.isInteger(length) || length < 2 || length > CFG.nCtx) throw new Error(`length must be an integer in [2, ${CFG.nCtx}], got ${length}`);
  const rand = uniformSampler(opts.seed ?? 2);
  return Array.from({ length: n }, () => {
    const idx = sampleDistinct(LETTER_IDS.map((_, i) => i), length, rand);
    const tokens = idx.map((i) => LETTER_IDS[i]);
    const targets = [];
    for (let t = 1; t < length; t++) {
      const answer = successor(tokens[t]);
      if (answer !== tokens[0]) targets.push({ pos: t, answer, foil: tokens[0], label: 'successor' });
    }
    return { tokens, text: idx.map((i) => LETTERS[i]).join(''), targets, meta: { copied: tokens[0] } };
  });
}

async function measure(model: HookedTransformer, d: PlantedDescription): Promise<Record<string, number>> {
  const prompts = copySuppressionPrompts(50, { seed: 2 });
  const [cp, sp] = d.mechanism;
  const patterns = [`blocks.${cp.layer}.attn.hook_pattern`, `blocks.${sp.layer}.attn.hook_pattern`];
  const run = async (opts: Parameters<HookedTransformer['runWithHooks']>[1]) => {
    const { logits, cache } = await model.runWithHooks(prompts.map((p) => p.tokens), { ...opts, cache: patterns });
    const hits: number[] = [];
    const copied: number[] = [];
    const copyAttn: number[] = [];
    const suppAttn: number[] = [];
    prompts.forEach((p, b) => {
      for (const { pos, answer, foil } of p.targets) {
        const row = logitRow(logits, b, pos);
        hits.push(argmax(row) === answer ? 1 : 0);
        copied.push(row[foil!]);
        copyAttn.push(patternAt(cache.get(patterns[0]), b, cp.head!, pos, 0));
        suppAttn.push(patternAt(cache.get(patterns[1]), b, sp.head!, pos, 0));
      }
    });
    return { accuracy: mean(hits), copiedLogit: mean(copied), copyAttention: mean(copyAttn), suppressionAttention: mean(suppAttn) };
  };
  const clean = await run({});
  const noSupp = await run(ablationOf(sp));
  const noCopy = await run(ablationOf(cp));
  const both = await run({ interventions: [...ablationOf(cp).interventions!, ...ablationOf(sp).interventions!] });
  return roundAll({
    prompts: prompts.length,
    accuracy: clean.accuracy,
    copiedLogit: clean.copiedLogit,
    copyAttention: clean.copyAttention,
    suppressionAttention: clean.suppressionAttention,
    accuracySuppressionHeadAblated: noSupp.accuracy,
    copiedLogitSuppressionHeadAblated: noSupp.copiedLogit,
    accuracyCopyingHeadAblated: noCopy.accuracy,
    copiedLogitCopyingHeadAblated: noCopy.copiedLogit,
    suppressionAttentionCopyingHeadAblated: noCopy.suppressionAttention,
    copiedLogitBothAblated: both.copiedLogit,
    accuracyDistractorL0Ablated: (await run(ablationOf(d.controls[0]))).accuracy,
    accuracyDistractorL1Ablated: (await run(ablationOf(d.controls[1]))).accuracy,
  });
}

export const copySuppression: PlantedKindImpl = {
  kind: 'copy-suppression',
  summary: 'copying head L0H1 + copy-suppression head L1H2 (2 layers, attention-only); task: predict the next letter despite a copied token',
  build,
  prompts: (n, seed) => copySuppressionPrompts(n, { seed }),
  measure,
};
