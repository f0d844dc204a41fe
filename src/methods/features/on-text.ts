/** Which features fire on a text: every token's strongest features, and the features strongest anywhere in it. */
import type { HookedTransformer } from '../../models/hooked.js';
import { checkSource, FeatureSource } from './source.js';
import { LanternError } from '../../errors.js';

/** Feature activations over one text. */
export interface FeaturesOnText {
  model: string;
  source: string;
  hook: string;
  tokens: string[];
  /** Per token, its `k` strongest features (activation > 0), strongest first. */
  perToken: { index: number; activation: number }[][];
  /** The `k` features with the largest activation anywhere in the text, with their activation at every token. */
  top: { index: number; max: number; activations: number[] }[];
}

/** Runs `text` once and ranks the source's features on it. */
export async function featuresOnText(model: HookedTransformer, source: FeatureSource, text: string, k = 10): Promise<FeaturesOnText> {
  checkSource(model, source);
  if (!text) throw new LanternError('empty text: give a prompt to find features on');
  const ids = model.toTokens(text);
  const { cache } = await model.runWithHooks([ids], { cache: [source.hook], logitPositions: [0] });
  const F = source.size;
  const enc = source.encode(cache.get(source.hook).f32, ids.length);
  const T = ids.length;
  const best = (scores: (f: number) => number) => {
    const order: { index: number; activation: number }[] = [];
    for (let f = 0; f < F; f++) {
      const a = scores(f);
      if (!(a > 0)) continue;
      if (order.length < k || a > order[order.length - 1].activation) {
        order.push({ index: f, activation: a });
        order.sort((x, y) => y.activation - x.activation);
        if (order.length > k) order.pop();
      }
    }
    return order;
  };
  const perToken = Array.from({ length: T }, (_, t) => best((f) => enc[t * F + f]));
  const top = best((f) => { let m = -Infinity; for (let t = 0; t < T; t++) m = Math.max(m, enc[t * F + f]); return m; })
    .map(({ index, activation }) => ({ index, max: activation, activations: Array.from({ length: T }, (_, t) => enc[t * F + index]) }));
  return { model: model.source, source: source.id, hook: source.hook, tokens: model.tokenStrings(ids), perToken, top };
}
