/**
 * Loading a model: a local Hugging Face folder or a Hub id -> a HookedTransformer whose weights
 * live in the compute thread. The architecture comes from config.json's model_type.
 */
import fs from 'node:fs';
import path from 'node:path';
import { readConfig } from './config.js';
import { resolveModel, ResolveOptions } from './hub.js';
import { Tokenizer } from './tokenizer.js';
import { loadWeights } from './weights.js';
import { HookedTransformer } from './hooked.js';
import { Executor, defaultExecutor } from '../engine/runtime/executor.js';

export interface LoadOptions extends ResolveOptions {
  executor?: Executor;
}

/** Loads a model from a Hugging Face folder or Hub id (default: the bundled model), checking config, weights and tokenizer. */
export async function loadModel(source: string, opts: LoadOptions = {}): Promise<HookedTransformer> {
  const { folder, hub } = await resolveModel(source, opts);
  const cfg = readConfig(folder);
  const tokenizer = fs.existsSync(path.join(folder, 'tokenizer.json')) ? Tokenizer.fromFolder(folder) : undefined;
  const weights = loadWeights(folder, cfg);
  const model = await HookedTransformer.create(cfg, weights, tokenizer, source, opts.executor ?? defaultExecutor());
  if (hub) model.hub = hub;
  return model;
}
