/**
 * The model picker: which models a request may name, and loading them.
 *
 * Requests name a model by reference, never by path: 'bundled', 'planted:<kind>',
 * 'folder:<id>' (a folder the user added, checked when added), 'hub:<org/name>' (or
 * 'hub:<org/name>@<revision>': a branch, tag or commit, such as Pythia's step1000), or 'default'
 * (the server's --model, trusted because it came from the command line). So an API client cannot
 * make the server open files it was not pointed at.
 */
import fs from 'node:fs';
import path from 'node:path';
import { LanternError } from '../../errors.js';
import type { Executor } from '../../engine/runtime/executor.js';
import { readConfig } from '../../models/config.js';
import { checkWeights } from '../../models/weights.js';
import type { HookedTransformer } from '../../models/hooked.js';
import { loadModel } from '../../models/load.js';
import type { DownloadProgress } from '../../models/hub.js';
import { makePlanted, PLANTED_KINDS, PLANTED_FILE } from '../../models/planted/index.js';
import { BUNDLED_MODEL } from '../../paths.js';
import type { ModelChoice } from './api-types.js';
import type { ModelFolder, RunStore } from './store.js';

// huggingface_hub's repo id pattern (ASCII): 'name' or 'org/name'.
const REPO_ID = /^(?:[\w.-]+\/)?[\w.-]+$/;
// Branch and tag names as git allows them here (no spaces, no '..'), or a commit sha.
const REVISION = /^[\w.-]+(?:\/[\w.-]+)*$/;

/** How many loaded models stay in memory (each holds its weights in the compute thread). */
const KEEP_LOADED = 2;

export interface ModelRegistryOptions {
  store: RunStore;
  executor: Executor;
  /** Where planted models are written the first time they are picked. */
  plantedDir: string;
  /** The server's --model (a folder or Hub id given on the command line). */
  defaultSource?: string;
  /** The Hub revision of defaultSource (the server's --revision). */
  defaultRevision?: string;
  /** Allow 'hub:' references (off when HF_HUB_OFFLINE is set and nothing is cached). */
  allowHub?: boolean;
}

export class ModelRegistry {
  private loaded = new Map<string, Promise<HookedTransformer>>();

  constructor(private opts: ModelRegistryOptions) {}

  get defaultRef(): string {
    return this.opts.defaultSource !== undefined ? 'default' : 'bundled';
  }

  choices(): ModelChoice[] {
    const out: ModelChoice[] = [];
    if (this.opts.defaultSource !== undefined) {
      const at = this.opts.defaultRevision !== undefined ? `@${this.opts.defaultRevision}` : '';
      out.push({ ref: 'default', label: `${this.opts.defaultSource}${at} (--model)`, kind: 'default' });
    }
    out.push({ ref: 'bundled', label: 'lantern-demo (bundled)', kind: 'bundled' });
    for (const k of PLANTED_KINDS) out.push({ ref: `planted:${k}`, label: `planted: ${k}`, kind: 'planted' });
    for (const f of this.opts.store.folders()) out.push({ ref: `folder:${f.id}`, label: f.name, kind: 'folder', path: f.path });
    return out;
  }

  /**
   * Checks a folder the user wants to add: an absolute path to a directory (after resolving
   * links) with a config.json of a supported architecture and safetensors weights. Only then is it remembered.
   */
  addFolder(given: string, name?: string): ModelFolder {
    if (typeof given !== 'string' || !path.isAbsolute(given)) throw new LanternError(`path must be an absolute folder path, got ${JSON.stringify(given)}`);
    let real: string;
    try {
      real = fs.realpathSync(given);
    } catch {
      throw new LanternError(`no folder at ${given}`);
    }
    if (!fs.statSync(real).isDirectory()) throw new LanternError(`${given} is not a folder; give the model folder that contains config.json`);
    const cfg = readConfig(real);
    const hasWeights = ['model.safetensors', 'model.safetensors.index.json'].some((f) => fs.existsSync(path.join(real, f)));
    if (!hasWeights) throw new LanternError(`${given} has no model.safetensors (or model.safetensors.index.json)`);
    // Every weight's header, shape and size (weights that do not match the config, or would not
    // fit in memory, are refused here, not when a run first loads them).
    checkWeights(real, cfg);
    return this.opts.store.addFolder(real, name?.trim() || path.basename(real));
  }

  /**
   * The path or Hub id behind a reference; LanternError (a 400) for anything not allowed. With
   * `prepare` false it only checks, so a request handler can refuse a bad reference at once while
   * writing a planted model is left to the (serial) compute queue.
   */
  async resolve(ref: string, prepare = true): Promise<string> {
    if (ref === 'default') {
      if (this.opts.defaultSource === undefined) throw new LanternError("model 'default' exists only when the server was started with --model");
      return this.opts.defaultSource;
    }
    if (ref === 'bundled') {
      if (!fs.existsSync(path.join(BUNDLED_MODEL, 'config.json'))) throw new LanternError('the bundled model is missing from this checkout');
      return BUNDLED_MODEL;
    }
    const [scheme, ...rest] = ref.split(':');
    const arg = rest.join(':');
    if (scheme === 'planted') {
      if (!(PLANTED_KINDS as readonly string[]).includes(arg)) throw new LanternError(`unknown planted model '${arg}'; kinds: ${PLANTED_KINDS.join(', ')}`);
      const folder = path.join(this.opts.plantedDir, arg);
      if (prepare && !fs.existsSync(path.join(folder, PLANTED_FILE))) await makePlanted(arg, folder, { measure: false, executor: this.opts.executor });
      return folder;
    }
    if (scheme === 'folder') {
      const f = this.opts.store.folders().find((x) => x.id === arg);
      if (!f) throw new LanternError(`no added model folder with id '${arg}'; add it first with POST /api/models/folders`);
      return f.path;
    }
    if (scheme === 'hub') {
      if (this.opts.allowHub === false) throw new LanternError('Hub models are turned off on this server');
      const { id } = hubRef(arg);
      // A Hub id that is also a path here would be read as that local folder.
      if (!REPO_ID.test(id) || id.includes('..') || fs.existsSync(id)) throw new LanternError(`'${id}' is not a Hub model id (like 'gpt2' or 'org/name')`);
      return id;
    }
    throw new LanternError(`unknown model '${ref}'; use 'bundled', 'planted:<kind>', 'folder:<id>' or 'hub:<id>[@<revision>]' (GET /api/models lists them)`);
  }

  /** The Hub revision a reference asks for, if any. */
  private revisionOf(ref: string): string | undefined {
    if (ref === 'default') return this.opts.defaultRevision;
    return ref.startsWith('hub:') ? hubRef(ref.slice('hub:'.length)).revision : undefined;
  }

  /**
   * The model behind `ref` when it can be had without downloading or writing anything (already
   * loaded, or a local folder), so a request can be estimated before it is queued; else undefined.
   */
  async loadIfLocal(ref: string): Promise<HookedTransformer | undefined> {
    const source = await this.resolve(ref, false);
    if (this.loaded.has(`${ref}\0${source}`)) return this.load(ref);
    const local = ref === 'bundled' || ref.startsWith('folder:') || (ref.startsWith('planted:') && fs.existsSync(path.join(source, PLANTED_FILE)))
      || (ref === 'default' && fs.existsSync(path.join(source, 'config.json')));
    return local ? this.load(ref) : undefined;
  }

  async load(ref: string, onProgress?: (e: DownloadProgress) => void): Promise<HookedTransformer> {
    const source = await this.resolve(ref);
    const key = `${ref}\0${source}`;
    let p = this.loaded.get(key);
    if (p) {
      this.loaded.delete(key);
      this.loaded.set(key, p);
      return p;
    }
    p = loadModel(source, { executor: this.opts.executor, revision: this.revisionOf(ref), progress: false, onProgress });
    this.loaded.set(key, p);
    p.catch(() => this.loaded.delete(key));
    while (this.loaded.size > KEEP_LOADED) {
      const [oldest, old] = this.loaded.entries().next().value as [string, Promise<HookedTransformer>];
      this.loaded.delete(oldest);
      void old.then((m) => m.executor.dropWeights(m.weights)).catch(() => {});
    }
    return p;
  }
}

/** 'org/name@revision' -> its parts; the revision is checked here, as it becomes part of a cache path. */
function hubRef(arg: string): { id: string; revision?: string } {
  const at = arg.indexOf('@');
  if (at < 0) return { id: arg };
  const revision = arg.slice(at + 1);
  if (!REVISION.test(revision) || revision.split('/').some((s) => s === '.' || s === '..')) {
    throw new LanternError(`'${revision}' is not a Hub revision (a branch, tag or commit, like 'main' or 'step1000')`);
  }
  return { id: arg.slice(0, at), revision };
}
