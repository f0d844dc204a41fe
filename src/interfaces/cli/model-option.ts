/** The --model and --revision options every command that loads a model shares. */
import { Option } from 'commander';
import { loadModel } from '../../models/load.js';
import { resolveModelFolder } from '../../models/hub.js';
import type { HookedTransformer } from '../../models/hooked.js';
import { defaultModel } from './defaults.js';

export interface ModelFlags {
  model?: string;
  revision?: string;
}

export function modelOption(help = 'model folder or Hub id (default: the bundled model)'): Option {
  return new Option('-m, --model <folder|hub-id>', help);
}

export function revisionOption(): Option {
  return new Option('--revision <branch|tag|commit>', "Hub revision of --model (default: main), e.g. a checkpoint branch such as Pythia's step1000");
}

export function modelSource(opts: ModelFlags): string {
  return opts.model ?? defaultModel();
}

export function loadModelFromFlags(opts: ModelFlags): Promise<HookedTransformer> {
  return loadModel(modelSource(opts), { revision: opts.revision, progress: process.stderr.isTTY });
}

export function modelFolderFromFlags(opts: ModelFlags): Promise<string> {
  return resolveModelFolder(modelSource(opts), { revision: opts.revision });
}

/** For saved results: which commit of a Hub model produced them. */
export function hubRecord(model: HookedTransformer): { hub?: HookedTransformer['hub'] } {
  return model.hub ? { hub: model.hub } : {};
}
