/**
 * Opening a feature source by name: `neurons:<hook>` for a layer's MLP neurons, or a sparse
 * autoencoder's folder or Hub id (SAELens or Gemma Scope layout), checked against the model.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { LanternError } from '../../errors.js';
import type { HookedTransformer } from '../../models/hooked.js';
import { asFeatureSource, checkSaeFits, loadSae, Sae } from '../sae/index.js';
import type { DashboardIndex } from './store.js';
import { FeatureSource, neuronSource } from './source.js';

/** Names a feature source: MLP neurons at a hook (`neurons:<hook>`), or an SAE to load. */
export interface FeatureSourceSpec {
  source?: string;
  sae?: string;
}

/** Opens a feature source for `model` (default: the first layer's MLP neurons). */
export async function openFeatureSource(model: HookedTransformer, spec: FeatureSourceSpec): Promise<FeatureSource> {
  return (await open(model, spec)).source;
}

async function open(model: HookedTransformer, spec: FeatureSourceSpec): Promise<{ source: FeatureSource; sae?: Sae }> {
  if (spec.sae !== undefined) {
    const { sae } = await loadSae(spec.sae);
    checkSaeFits(model, sae);
    const source = asFeatureSource(sae);
    // Logits and nearest features read decoder rows in the residual stream; an SAE on another
    // space (attention z, MLP neurons) has none there.
    const writesResidual = sae.decoderDirection(0).length === model.cfg.dModel;
    return { source: writesResidual ? source : { ...source, decoderDirection: undefined }, sae };
  }
  const name = spec.source ?? 'neurons:blocks.0.mlp.hook_post';
  const m = /^neurons:(.+)$/.exec(name);
  if (!m) throw new LanternError(`feature source '${name}' is not of the form neurons:<hook> (e.g. neurons:blocks.0.mlp.hook_post)`);
  return { source: await neuronSource(model, m[1]) };
}

/** A feature source as a job records it: where workers open it, and a hash of what it computes. */
export interface JobFeatureSource {
  source: FeatureSource;
  /** The spec workers open it with: an SAE in a local folder by its absolute path. */
  spec: FeatureSourceSpec;
  /** sha256 of an SAE's config and weights; neurons have none (the model's weights hash covers them). */
  saeSha256?: string;
}

/** sha256 of what an SAE computes: its config (not where it was loaded from) and its weights. */
function saeSha256(sae: Sae): string {
  const h = crypto.createHash('sha256');
  h.update(JSON.stringify({ ...sae.cfg, source: undefined }));
  for (const [name, w] of Object.entries(sae.weights).sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (!w) continue;
    h.update(`${name}:${w.length}:`);
    h.update(new Uint8Array(w.buffer, w.byteOffset, w.byteLength));
  }
  return h.digest('hex');
}

/**
 * Opens a feature source for a job: as {@link openFeatureSource}, plus the spec workers open it
 * with and the SAE's content hash. Given `expectSha256` (a worker opening a job's source), an SAE
 * with other contents is a LanternError naming both hashes.
 */
export async function openJobFeatureSource(model: HookedTransformer, spec: FeatureSourceSpec, expectSha256?: string): Promise<JobFeatureSource> {
  const local = spec.sae !== undefined && fs.existsSync(spec.sae);
  const { source, sae } = await open(model, local ? { sae: path.resolve(spec.sae!) } : spec);
  if (!sae) return { source, spec: { source: source.id } };
  const sha256 = saeSha256(sae);
  if (expectSha256 !== undefined && sha256 !== expectSha256) throw new LanternError(`the SAE at ${spec.sae} has sha256 ${sha256.slice(0, 16)}…, not the ${expectSha256.slice(0, 16)}… the job was submitted with`);
  return { source, spec: { sae: local ? path.resolve(spec.sae!) : spec.sae }, saeSha256: sha256 };
}

/** The source a saved dashboard set was built from, as {@link openFeatureSource} takes it. */
export function dashboardSourceSpec(index: DashboardIndex): FeatureSourceSpec {
  return index.source.startsWith('neurons:') ? { source: index.source } : { sae: index.source };
}
