/**
 * Opening a feature source by name: `neurons:<hook>` for a layer's MLP neurons, or a sparse
 * autoencoder's folder or Hub id (SAELens or Gemma Scope layout), checked against the model.
 */
import { LanternError } from '../../errors.js';
import type { HookedTransformer } from '../../models/hooked.js';
import { asFeatureSource, checkSaeFits, loadSae } from '../sae/index.js';
import type { DashboardIndex } from './store.js';
import { FeatureSource, neuronSource } from './source.js';

/** Names a feature source: MLP neurons at a hook (`neurons:<hook>`), or an SAE to load. */
export interface FeatureSourceSpec {
  source?: string;
  sae?: string;
}

/** Opens a feature source for `model` (default: the first layer's MLP neurons). */
export async function openFeatureSource(model: HookedTransformer, spec: FeatureSourceSpec): Promise<FeatureSource> {
  if (spec.sae !== undefined) {
    const { sae } = await loadSae(spec.sae);
    checkSaeFits(model, sae);
    const source = asFeatureSource(sae);
    // Logits and nearest features read decoder rows in the residual stream; an SAE on another
    // space (attention z, MLP neurons) has none there.
    const writesResidual = sae.decoderDirection(0).length === model.cfg.dModel;
    return writesResidual ? source : { ...source, decoderDirection: undefined };
  }
  const name = spec.source ?? 'neurons:blocks.0.mlp.hook_post';
  const m = /^neurons:(.+)$/.exec(name);
  if (!m) throw new LanternError(`feature source '${name}' is not of the form neurons:<hook> (e.g. neurons:blocks.0.mlp.hook_post)`);
  return neuronSource(model, m[1]);
}

/** The source a saved dashboard set was built from, as {@link openFeatureSource} takes it. */
export function dashboardSourceSpec(index: DashboardIndex): FeatureSourceSpec {
  return index.source.startsWith('neurons:') ? { source: index.source } : { sae: index.source };
}
