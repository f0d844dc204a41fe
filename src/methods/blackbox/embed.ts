/**
 * Text representations for SMILE's Wasserstein distances: a text becomes a cloud of unit vectors,
 * one per token, and two texts are as far apart as the cheapest way to move one cloud onto the
 * other (`textDistance`).
 *
 * The default representation is a Lantern model's *token embeddings* (`hook_embed`, the rows of
 * W_E) of the text's tokens, L2-normalised. Why this choice:
 *  - SMILE's text version measures Word Mover's Distance over static word2vec vectors; the input
 *    embeddings of a language model are the closest static analogue that every Lantern user
 *    already has (the bundled model by default, or any GPT-2 such as `gpt2` for better semantics),
 *    so the method stays offline and needs no second download;
 *  - static vectors give a word the same point wherever it occurs, so the distance measures which
 *    words the response changed, not where (contextual states would also move when only word
 *    order changes);
 *  - unit vectors bound every ground distance to [0, 2], so SMILE's kernel width σ = 0.25 means
 *    the same thing whatever model supplies the vectors.
 * A deeper hook (e.g. `blocks.3.hook_resid_post`) gives contextual vectors instead, for users who
 * want order to count.
 *
 * The empty text is represented by the origin, at distance exactly 1 from every unit vector, so an
 * empty response is as far from any response as two unrelated tokens are on average (< √2).
 */
import { LanternError } from '../../errors.js';
import type { HookedTransformer } from '../../models/hooked.js';
import { wasserstein1 } from './wasserstein.js';

/** Turns text into vectors, for SMILE's distance between responses. */
export interface TextEmbedder {
  /** Identifies the representation in saved results. */
  readonly id: string;
  /** One vector per unit of `text` (empty array for empty text). */
  embed(text: string): Promise<Float64Array[]>;
}

function normalise(v: ArrayLike<number>): Float64Array {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i] * v[i];
  const n = Math.sqrt(s) || 1;
  return Float64Array.from(v, (x) => x / n);
}

/** Unit vectors of a model's activations at `hook` (default `hook_embed`) for each token of the text. */
export function modelEmbedder(model: HookedTransformer, opts: { hook?: string } = {}): TextEmbedder {
  const hook = opts.hook ?? 'hook_embed';
  model.checkHook(hook);
  const cache = new Map<string, Float64Array[]>();
  return {
    id: `${model.source}#${hook}`,
    async embed(text: string): Promise<Float64Array[]> {
      const hit = cache.get(text);
      if (hit) return hit;
      let ids = model.toTokens(text);
      // Responses longer than the context keep their first nCtx tokens: the distance is about content, not length.
      if (ids.length > model.cfg.nCtx) ids = ids.slice(0, model.cfg.nCtx);
      let out: Float64Array[] = [];
      if (ids.length > 0) {
        const act = (await model.runWithCache([ids], [hook])).cache.get(hook);
        const D = act.shape[act.shape.length - 1];
        if (act.shape.length !== 3) throw new LanternError(`hook '${hook}' is not a [batch, pos, d] activation; pick a residual-stream or embedding hook`);
        const data = act.data as Float32Array;
        out = ids.map((_, t) => normalise(data.subarray(t * D, (t + 1) * D)));
      }
      cache.set(text, out);
      return out;
    },
  };
}

/** Wasserstein-1 distance between the two texts' vector clouds (the origin stands for an empty text). */
export async function textDistance(embedder: TextEmbedder, a: string, b: string): Promise<number> {
  if (a === b) return 0;
  const [ea, eb] = await Promise.all([embedder.embed(a), embedder.embed(b)]);
  const dim = ea[0]?.length ?? eb[0]?.length ?? 1;
  const origin = [new Float64Array(dim)];
  return wasserstein1(ea.length ? ea : origin, eb.length ? eb : origin);
}
