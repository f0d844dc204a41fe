/**
 * Opening a backend from one string, as the CLI takes it:
 *   http(s)://host:port[/v1]   an OpenAI-compatible server (HttpBackend; `model` names the remote model,
 *                              or the server's only model is used)
 *   gguf:/path/model.gguf      a GGUF file through node-llama-cpp (GgufBackend, loaded on demand)
 *   lantern:<folder|hub-id>    Lantern's own engine (LanternBackend); a bare folder or hub id also works
 *   lantern                    the bundled model
 */
import { LanternError } from '../errors.js';
import { loadModel } from '../models/load.js';
import { BUNDLED_MODEL } from '../paths.js';
import { HttpBackend, HttpBackendOptions, listModels } from './http.js';
import { LanternBackend } from './lantern.js';
import type { LanguageModelBackend } from './types.js';
import type { ControlVectorSpec } from './gguf-steer.js';

export type { LanguageModelBackend, Prompt, Continuation, ContinuationScore, Generation, GenerateOptions, Usage, ScoreOptions, PromptLogprobs } from './types.js';
export { HttpBackend, listModels } from './http.js';
export type { HttpBackendOptions, HttpEvent, HttpApi } from './http.js';
export type { ControlVectorSpec } from './gguf-steer.js';
export { LanternBackend } from './lantern.js';

/** Settings for {@link openBackend}: the HTTP backend's options (besides the URL), and a GGUF model's context size and threads. */
export interface OpenBackendOptions extends Partial<Omit<HttpBackendOptions, 'baseURL'>> {
  /** GGUF: context size in tokens (default 2048, or the model's training context if smaller). */
  contextSize?: number;
  /** GGUF: CPU threads (default: one fewer than the cores, at most 4). */
  threads?: number;
  /** GGUF: llama.cpp control vectors to apply (see GgufOptions.controlVectors). */
  controlVectors?: ControlVectorSpec[];
}

/** Opens a backend from a spec string: `http(s)://…/v1`, `gguf:<file>`, or `lantern[:<model>]`. */
export async function openBackend(spec: string, o: OpenBackendOptions = {}): Promise<LanguageModelBackend> {
  const scheme = /^([a-z][\w+.-]*):\/\//i.exec(spec)?.[1];
  if (scheme !== undefined && !/^https?$/i.test(scheme)) {
    throw new LanternError(`unknown backend scheme '${scheme}://' in '${spec}'; use http(s)://host:port/v1, gguf:<file.gguf>, or lantern:<model folder or Hub id>`);
  }
  if (o.controlVectors?.length && !spec.startsWith('gguf:')) throw new LanternError(`control vectors apply only to a gguf:<file> backend, not '${spec}'`);
  if (/^https?:\/\//i.test(spec)) {
    let model = o.model;
    if (!model) {
      const { model: _m, contextSize: _c, threads: _t, controlVectors: _v, ...http } = o;
      const models = await listModels(spec, http);
      if (models.length !== 1) throw new LanternError(`${spec} serves ${models.length} models (${models.slice(0, 5).join(', ')}); name one with --remote-model`);
      model = models[0];
    }
    return new HttpBackend({ ...o, baseURL: spec, model });
  }
  if (spec.startsWith('gguf:')) {
    const { GgufBackend } = await import('./gguf.js');
    return GgufBackend.open(spec.slice(5), { contextSize: o.contextSize, threads: o.threads, controlVectors: o.controlVectors });
  }
  if (spec === 'lantern') return new LanternBackend(await loadModel(BUNDLED_MODEL));
  return new LanternBackend(await loadModel(spec.replace(/^lantern:/, '')));
}
