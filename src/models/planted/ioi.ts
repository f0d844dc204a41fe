/**
 * A small IOI-like task (Wang et al., 2022, "Interpretability in the Wild"): in
 * "When Mary and John went to the store, John gave a drink to", predict the indirect object
 * (" Mary"), the name that occurs once, not the subject (" John"), which occurs twice.
 *
 * Residual stream (each block one-hot + a balance coordinate, see builder.ts):
 *   TOK    the current token: 20 names, or 'other'          embedding
 *   POS    the position                                      positional embedding
 *   SNAME  the most recent name (at END: S2, the subject)    S-inhibition head L0H1
 *   PREVJ  the previous token     distractor head L0H3 (read by nothing)
 *   OUT    the name to predict                               name mover head L1H2, read by the unembedding
 *   CURJ   the current token      distractor head L1H0 (read by nothing)
 *   BIAS   0 in the stream, 1 after ln_final: logit(' ') = 2 everywhere, the default prediction
 *
 * S-inhibition head L0H1: constant query; key score = 28·[key is a name] + 3·(key position): each
 *   position attends to the latest name at or before it. At END that is S2 = S (the template puts
 *   S2 at most 6 tokens before END and at least 6 after the first two names). OV: TOK -> SNAME.
 * Name mover head L1H2:   score = 12·[key is a name] - 24·[key's name = SNAME(query)]: at END,
 *   IO scores 12, S1 and S2 score -12, other tokens 0. OV: TOK -> OUT; logit(name) = 10·OUT(name).
 *
 * So the name mover moves IO's name to the final position. Ablating it leaves every name's logit
 * at 0; ablating the S-inhibition head makes the name mover attend to all three names, and S
 * (twice) beats IO: the logit difference turns negative, as in the real IOI circuit.
 */
import type { ModelConfig } from '../config.js';
import type { HookedTransformer } from '../hooked.js';
import { attnScale, ResidualLayout, WeightBuilder } from './builder.js';
import { ablationOf, argmax, logitRow, mean, patternAt, prob, randInt, roundAll, sampleDistinct, SPACE, uniformSampler, headComponent, tokenDistractors } from './common.js';
import { cfgSummary } from './induction.js';
import type { PlantedBuild, PlantedKindImpl, PlantedPrompt } from './kind.js';
import type { PlantedComponent, PlantedDescription } from './types.js';

const CFG: ModelConfig = {
  architecture: 'gpt2', nLayers: 2, dModel: 192, nHeads: 4, nKvHeads: 4, dHead: 48, dMlp: 64,
  nCtx: 32, dVocab: 6000, lnEps: 1e-5, act: 'gelu_new', tiedUnembed: false,
};

const MARGIN = 12; // distractors
const NAME_SCORE = 28; // S-inhibition head: bonus for a name key
const RECENCY = 3; //     S-inhibition head: score per position (prefers the latest name)
const MOVER_NAME = 12; // name mover: bonus for a name key
const MOVER_INHIBIT = 24; // name mover: penalty for the name in SNAME
const BETA = 10; // logit of the moved name
const DEFAULT_LOGIT = 2;

/** Single-token names (with the leading space), GPT-2 ids. */
export const IOI_NAMES: { name: string; id: number }[] = [
  ['John', 1757], ['Mark', 2940], ['David', 3271], ['Paul', 3362], ['Sam', 3409], ['Jack', 3619], ['James', 3700],
  ['Michael', 3899], ['Ben', 3932], ['Tom', 4186], ['Alex', 4422], ['George', 4502], ['Matt', 4705], ['Scott', 4746],
  ['Mike', 4995], ['Tim', 5045], ['Chris', 5180], ['Mary', 5335], ['Ann', 5506], ['Peter', 5613],
].map(([name, id]) => ({ name: name as string, id: id as number }));

type Piece = [string, number] | 'A' | 'B' | 'S';

/** Templates: A and B are the two names in order (IO and S in some order), S the repeated subject. */
export const IOI_TEMPLATES: Piece[][] = [
  [['When', 2215], 'A', [' and', 290], 'B', [' went', 1816], [' to', 284], [' the', 262], [' store', 3650], [',', 11], 'S', [' gave', 2921], [' a', 257], [' drink', 4144], [' to', 284]],
  [['When', 2215], 'A', [' and', 290], 'B', [' went', 1816], [' to', 284], [' the', 262], [' school', 1524], [',', 11], 'S', [' gave', 2921], [' a', 257], [' book', 1492], [' to', 284]],
  [['After', 3260], 'A', [' and', 290], 'B', [' went', 1816], [' to', 284], [' the', 262], [' house', 2156], [',', 11], 'S', [' brought', 3181], [' a', 257], [' letter', 3850], [' to', 284]],
  [['While', 3633], 'A', [' and', 290], 'B', [' were', 547], [' working', 1762], [' at', 379], [' the', 262], [' office', 2607], [',', 11], 'S', [' sent', 1908], [' a', 257], [' letter', 3850], [' to', 284]],
];

/** Which heads implement the IOI model's mechanism (S-inhibition head, name mover). */
export const IOI_HEADS = {
  sInhibition: { layer: 0, head: 1 },
  nameMover: { layer: 1, head: 2 },
  previousTokenDistractor: { layer: 0, head: 3 },
  currentTokenDistractor: { layer: 1, head: 0 },
} as const;

function build(): PlantedBuild {
  const cfg = CFG;
  const L = new ResidualLayout();
  const labels = [...IOI_NAMES.map((n) => n.name), 'other'];
  const OTHER = IOI_NAMES.length;
  const names = IOI_NAMES.map((_, u) => u);
  const TOK = L.add('TOK', labels, 'current token: a name, or other (embedding)');
  const POS = L.add('POS', Array.from({ length: cfg.nCtx }, (_, p) => `pos ${p}`), 'position (positional embedding)');
  const SNAME = L.add('SNAME', labels.map((t) => `latest=${t}`), 'the most recent name; at END the subject S (written by the S-inhibition head L0H1; read by the name mover\'s query)');
  const PREVJ = L.add('PREVJ', labels.map((t) => `prev=${t}`), 'previous token (written by the distractor L0H3; read by nothing)');
  const OUT = L.add('OUT', labels.map((t) => `out=${t}`), 'the name to predict (written by the name mover L1H2; read by the unembedding)');
  const CURJ = L.add('CURJ', labels.map((t) => `cur=${t}`), 'current token again (written by the distractor L1H0; read by nothing)');
  const BIAS = L.addBias();
  const W = new WeightBuilder(cfg, L);
  const { sInhibition: si, nameMover: nm, previousTokenDistractor: pd, currentTokenDistractor: cd } = IOI_HEADS;

  const unitOf = new Map(IOI_NAMES.map((n, u) => [n.id, u]));
  for (let v = 0; v < cfg.dVocab; v++) W.embedToken(v, TOK, unitOf.get(v) ?? OTHER);
  for (let p = 0; p < cfg.nCtx; p++) W.embedPosition(p, POS, p);

  W.lnIdentity('blocks.0.ln1', 2);
  // S-inhibition head: one head dimension, q = 1 (bias), k = 28·[name] + 3·position.
  W.queryBias(si.layer, si.head, 0, attnScale(cfg, 1));
  for (const u of names) W.key(si.layer, si.head, L.dim(TOK, u), 0, NAME_SCORE);
  for (let p = 0; p < cfg.nCtx; p++) W.key(si.layer, si.head, L.dim(POS, p), 0, RECENCY * p);
  W.copy(si.layer, si.head, TOK, SNAME);
  // Distractor: a previous-token head writing PREVJ.
  for (let t = 1; t < cfg.nCtx; t++) {
    W.query(pd.layer, pd.head, L.dim(POS, t), t, attnScale(cfg, MARGIN));
    W.key(pd.layer, pd.head, L.dim(POS, t - 1), t, 1);
  }
  W.copy(pd.layer, pd.head, TOK, PREVJ);
  W.lnIdentity('blocks.0.ln2', 4);

  // Layer 1 reads TOK, POS, SNAME, PREVJ.
  W.lnIdentity('blocks.1.ln1', 4);
  // Name mover: dim 0 = 'the key is a name' (constant query 12); dim 1+u = 'name u' with the query
  // holding -24·SNAME(u): the name the S-inhibition head found is avoided.
  W.queryBias(nm.layer, nm.head, 0, attnScale(cfg, MOVER_NAME));
  for (const u of names) {
    W.key(nm.layer, nm.head, L.dim(TOK, u), 0, 1);
    W.query(nm.layer, nm.head, L.dim(SNAME, u), 1 + u, -attnScale(cfg, MOVER_INHIBIT));
    W.key(nm.layer, nm.head, L.dim(TOK, u), 1 + u, 1);
  }
  W.copy(nm.layer, nm.head, TOK, OUT);
  // Distractor: attends to itself, writes CURJ.
  for (let t = 0; t < cfg.nCtx; t++) {
    W.query(cd.layer, cd.head, L.dim(POS, t), t, attnScale(cfg, MARGIN));
    W.key(cd.layer, cd.head, L.dim(POS, t), t, 1);
  }
  W.copy(cd.layer, cd.head, TOK, CURJ);
  W.lnIdentity('blocks.1.ln2', 6);
  W.lnIdentity('ln_final', 6);
  for (const u of names) W.unembed(IOI_NAMES[u].id, L.dim(OUT, u), BETA);
  W.unembedBias(SPACE, BIAS, DEFAULT_LOGIT);

  const nameIds = IOI_NAMES.map((n) => n.id);
  const mechanism: PlantedComponent[] = [
    {
      ...headComponent(nm), role: 'name mover head', planted: true,
      attends: 'END -> IO (the name that is not the latest name)', reads: ['TOK (K, OV)', 'SNAME (Q, negatively)'], writes: ['OUT'],
      tokens: { names: nameIds }, positions: 'query END (the last position) -> key IO position (1 or 3)',
      ablation: "no name is predicted (all name logits 0, the default ' ' wins): IO-S logit difference 0, accuracy 0",
      details: `score = ${MOVER_NAME}·[key is a name] - ${MOVER_INHIBIT}·[key's name = SNAME]; OV copies the name into OUT, logit ${BETA}.`,
    },
    {
      ...headComponent(si), role: 'S-inhibition head', planted: true,
      attends: 'each position -> the latest name at or before it; END -> S2', reads: ['TOK (K: is a name; OV)', 'POS (K: recency)'], writes: ['SNAME'],
      tokens: { names: nameIds }, positions: 'query END -> key S2 position',
      ablation: 'the name mover attends to IO, S1 and S2 alike: S (twice) beats IO, the logit difference becomes negative (about -beta/3)',
      details: `score = ${NAME_SCORE}·[key is a name] + ${RECENCY}·(key position); OV copies the name into SNAME, which the name mover's query reads with weight -${MOVER_INHIBIT}.`,
    },
  ];
  const controls = tokenDistractors(pd, cd);
  const description: PlantedDescription = {
    kind: 'ioi',
    version: 1,
    description:
      'A 2-layer attention-only GPT-2 that does indirect-object identification on template sentences ("When Mary and John went to the store, ' +
      'John gave a drink to" -> " Mary"). Head L1H2 is the name mover: from the final position it attends to the indirect object\'s name and ' +
      'copies it to the output subspace that the unembedding reads. It knows which name to avoid because head L0H1 (S-inhibition) moves the ' +
      'latest name before the final position - the repeated subject S2 - into the final position, and the name mover\'s query penalises keys ' +
      'holding that name. L0H3 and L1H0 are distractor heads whose outputs nothing reads; all MLP weights are zero.',
    config: cfgSummary(cfg),
    residual: L.describe(),
    constants: { attentionMargin: MARGIN, sInhibitionNameScore: NAME_SCORE, sInhibitionRecencyPerPosition: RECENCY, nameMoverNameScore: MOVER_NAME, nameMoverInhibition: MOVER_INHIBIT, logitScale: BETA, defaultLogit: DEFAULT_LOGIT },
    mechanism,
    controls,
    task: {
      generator: 'ioiPrompts(n, { seed })',
      prompts: `One of ${IOI_TEMPLATES.length} templates ("When {A} and {B} went to the store, {S} gave a drink to", ...) with two distinct names from ${IOI_NAMES.length}; ` +
        'ABBA (IO first) or BABA (S first) at random. Names at positions 1 and 3, S2 at END-4, END = the last position.',
      answer: "At END (the last position), the indirect object's name (the one that occurs once); the foil is the subject S.",
      metric: 'Top-1 accuracy of IO at END and the mean logit difference logit(IO) - logit(S).',
      tokens: { names: nameIds },
    },
  };
  return { cfg, weights: W.w, description };
}

/** IOI sentences: random template, names and order (ABBA / BABA). */
export function ioiPrompts(n = 50, opts: { seed?: number; template?: number } = {}): PlantedPrompt[] {
  const rand = uniformSampler(opts.seed ?? 4);
  return Array.from({ length: n }, () => {
    const ti = opts.template ?? randInt(rand, 0, IOI_TEMPLATES.length);
    const template = IOI_TEMPLATES[ti];
    if (!template) throw new Error(`no IOI template ${ti}`);
    const [io, s] = sampleDistinct(IOI_NAMES, 2, rand);
    const abba = rand() < 0.5;
    const [a, b] = abba ? [io, s] : [s, io];
    const tokens: number[] = [];
    const pieces: string[] = [];
    const at: Record<string, number[]> = { io: [], s: [] };
    for (const p of template) {
      const name = p === 'A' ? a : p === 'B' ? b : p === 'S' ? s : null;
      if (name) {
        (name === io ? at.io : at.s).push(tokens.length);
        tokens.push(name.id);
        pieces.push(` ${name.name}`);
      } else {
        const [text, id] = p as [string, number];
        tokens.push(id);
        pieces.push(text);
      }
    }
    const end = tokens.length - 1;
    return {
      tokens,
      text: pieces.join(''),
      targets: [{ pos: end, answer: io.id, foil: s.id, label: 'ioi' }],
      meta: { io: io.id, s: s.id, ioName: io.name, sName: s.name, ioPos: at.io[0], s1Pos: at.s[0], s2Pos: at.s[1], end, template: ti, order: abba ? 'ABBA' : 'BABA' },
    };
  });
}

async function measure(model: HookedTransformer, d: PlantedDescription): Promise<Record<string, number>> {
  const prompts = ioiPrompts(50, { seed: 4 });
  const [nm, si] = d.mechanism;
  const patterns = [`blocks.${nm.layer}.attn.hook_pattern`, `blocks.${si.layer}.attn.hook_pattern`];
  const run = async (opts: Parameters<HookedTransformer['runWithHooks']>[1]) => {
    const { logits, cache } = await model.runWithHooks(prompts.map((p) => p.tokens), { ...opts, cache: patterns });
    const hits: number[] = [];
    const diffs: number[] = [];
    const probs: number[] = [];
    const toIO: number[] = [];
    const toS: number[] = [];
    const toS2: number[] = [];
    prompts.forEach((p, b) => {
      const m = p.meta as Record<string, number>;
      const row = logitRow(logits, b, m.end);
      hits.push(argmax(row) === m.io ? 1 : 0);
      diffs.push(row[m.io] - row[m.s]);
      probs.push(prob(row, m.io));
      toIO.push(patternAt(cache.get(patterns[0]), b, nm.head!, m.end, m.ioPos));
      toS.push(patternAt(cache.get(patterns[0]), b, nm.head!, m.end, m.s1Pos) + patternAt(cache.get(patterns[0]), b, nm.head!, m.end, m.s2Pos));
      toS2.push(patternAt(cache.get(patterns[1]), b, si.head!, m.end, m.s2Pos));
    });
    return { accuracy: mean(hits), logitDiff: mean(diffs), prob: mean(probs), toIO: mean(toIO), toS: mean(toS), toS2: mean(toS2) };
  };
  const clean = await run({});
  const noNm = await run(ablationOf(nm));
  const noSi = await run(ablationOf(si));
  const c0 = await run(ablationOf(d.controls[0]));
  const c1 = await run(ablationOf(d.controls[1]));
  return roundAll({
    prompts: prompts.length,
    accuracy: clean.accuracy,
    logitDiff: clean.logitDiff,
    meanProbIO: clean.prob,
    nameMoverAttentionIO: clean.toIO,
    nameMoverAttentionS: clean.toS,
    sInhibitionAttentionS2: clean.toS2,
    accuracyNameMoverAblated: noNm.accuracy,
    logitDiffNameMoverAblated: noNm.logitDiff,
    accuracySInhibitionAblated: noSi.accuracy,
    logitDiffSInhibitionAblated: noSi.logitDiff,
    nameMoverAttentionIOSInhibitionAblated: noSi.toIO,
    logitDiffDistractorL0Ablated: c0.logitDiff,
    logitDiffDistractorL1Ablated: c1.logitDiff,
    accuracyDistractorL0Ablated: c0.accuracy,
    accuracyDistractorL1Ablated: c1.accuracy,
  });
}

export const ioi: PlantedKindImpl = {
  kind: 'ioi',
  summary: 'name mover head L1H2 moves the indirect object to the final position, told which name to avoid by S-inhibition head L0H1 (2 layers, attention-only)',
  build,
  prompts: (n, seed) => ioiPrompts(n, { seed }),
  measure,
};
