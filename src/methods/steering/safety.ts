/**
 * Hidden-state safety analysis (as in *How Alignment and Jailbreak Work*): for harmful (label 1)
 * and harmless (label 0) prompts, wrapped in the model's chat template where it has one, probe
 * accuracy by layer on held-out prompts, and the logit lens of the harmful − harmless mean
 * difference at each layer (which tokens that direction promotes and suppresses). The last layer's
 * mean difference is the candidate refusal direction for directional ablation.
 */
import { LanternError } from '../../errors.js';
import type { HookedTransformer } from '../../models/hooked.js';
import { chatPrompt } from '../../models/chat.js';
import { datasetHash, LabelledExample, requireTwoClasses } from '../representations/data.js';
import { harvestProbeData, Metrics, ProbeKind, residHooks, trainProbe } from '../representations/probes/index.js';

/** Options for {@link safetyAnalysis}. */
export interface SafetyOptions {
  /** The probe fit at each layer (default 'mass-mean'). */
  kind?: ProbeKind;
  /** Wrap each prompt as a user message in the chat template (default: when the tokenizer has one). */
  chat?: boolean;
  /** Tokens listed per layer by the logit lens (default 10). */
  topK?: number;
  /** Seeds the held-out split and the probe fits. */
  seed?: number;
  /** The data's name, recorded in the result. */
  dataset?: string;
  /** Called as prompts are harvested (done, total). */
  progress?: (done: number, total: number) => void;
}

/** Per layer: held-out probe metrics, the mean difference's norm, and the tokens it promotes and suppresses. */
export interface SafetyLayer {
  hook: string;
  train: Metrics;
  test: Metrics;
  /** ‖mean(harmful) − mean(harmless)‖ at the last prompt position. */
  norm: number;
  promoted: { id: number; token: string; logit: number }[];
  suppressed: { id: number; token: string; logit: number }[];
}

/** The result of {@link safetyAnalysis}, ready to save as JSON. */
export interface SafetyResult {
  model: string;
  method: 'safety-analysis';
  dataset: string;
  datasetHash: string;
  seed: number;
  settings: { kind: ProbeKind; chat: boolean; positions: 'last'; topK: number };
  layers: SafetyLayer[];
  /** The last layer's harmful − harmless mean difference (a candidate refusal direction), [d_model]. */
  direction: number[];
}

function hasChatTemplate(model: HookedTransformer): boolean {
  try {
    chatPrompt(model, [{ role: 'user', content: 'x' }]);
    return true;
  } catch {
    return false;
  }
}

/** Probe accuracy by layer and the logit lens of the harmful/harmless mean difference. */
export async function safetyAnalysis(model: HookedTransformer, examples: readonly LabelledExample[], opts: SafetyOptions = {}): Promise<SafetyResult> {
  if (examples.length < 4) throw new LanternError(`safety analysis needs harmful and harmless prompts (at least 4), got ${examples.length}`);
  requireTwoClasses(examples.map((e) => e.label), 'the harmful/harmless labels');
  const chat = opts.chat ?? hasChatTemplate(model);
  const wrapped = examples.map((e) => ({ ...e, text: chat ? chatPrompt(model, [{ role: 'user', content: e.text }]).text : e.text }));
  const kind = opts.kind ?? 'mass-mean';
  const seed = opts.seed ?? 0;
  const topK = opts.topK ?? 10;
  const hooks = residHooks(model);
  const data = await harvestProbeData(model, wrapped, { hooks, positions: 'last', seed, progress: opts.progress });
  const W_U = await model.unembeddingMatrix(); // [d_model, vocab], final norm's weight folded in
  const D = model.cfg.dModel;
  const V = model.cfg.dVocab;
  let direction: number[] = [];
  const layers = hooks.map((hook) => {
    const d = data.get(hook)!;
    const t = trainProbe(d, { kind, seed });
    // Over every prompt, train and test: the direction describes the data, it is not scored on it.
    const sums = [new Float64Array(D), new Float64Array(D)];
    const counts = [0, 0];
    for (let i = 0; i < d.x.rows; i++) {
      const c = d.labels[i] > 0.5 ? 1 : 0;
      counts[c]++;
      for (let j = 0; j < D; j++) sums[c][j] += d.x.data[i * D + j];
    }
    const diff = Float64Array.from({ length: D }, (_, j) => sums[1][j] / counts[1] - sums[0][j] / counts[0]);
    direction = Array.from(diff);
    const logits = new Float64Array(V);
    for (let j = 0; j < D; j++) {
      const dj = diff[j];
      if (dj === 0) continue;
      const row = W_U.f32.subarray(j * V, (j + 1) * V);
      for (let v = 0; v < V; v++) logits[v] += dj * row[v];
    }
    const order = Array.from({ length: V }, (_, v) => v).sort((a, b) => logits[b] - logits[a]);
    const entry = (v: number) => ({ id: v, token: model.tokenizer ? model.tokenStrings([v])[0] : String(v), logit: logits[v] });
    return {
      hook, train: t.train, test: t.test, norm: Math.hypot(...diff),
      promoted: order.slice(0, topK).map(entry), suppressed: order.slice(-topK).reverse().map(entry),
    };
  });
  return {
    model: model.source, method: 'safety-analysis', dataset: opts.dataset ?? '', datasetHash: datasetHash(examples), seed,
    settings: { kind, chat, positions: 'last', topK }, layers, direction,
  };
}
