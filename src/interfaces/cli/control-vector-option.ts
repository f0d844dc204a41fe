/**
 * `--control-vector <file>[:strength]`, repeatable, on the commands that take a gguf: backend:
 * llama.cpp control vectors applied to that model (GgufOptions.controlVectors), scaled and summed
 * as llama.cpp's --control-vector-scaled does.
 */
import { Option } from 'commander';
import type { ControlVectorSpec } from '../../backends/index.js';
import { LanternError } from '../../errors.js';

const NUMBER = /^[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$/i;

/** `file` or `file:strength`; a suffix that is not a number is part of the file name. */
export function parseControlVector(v: string): ControlVectorSpec {
  const at = v.lastIndexOf(':');
  const tail = at >= 0 ? v.slice(at + 1) : '';
  const spec = NUMBER.test(tail) ? { path: v.slice(0, at), strength: Number(tail) } : { path: v };
  if (!spec.path) throw new LanternError(`--control-vector needs a file: <file.gguf>[:strength], got '${v}'`);
  if (spec.strength !== undefined && !Number.isFinite(spec.strength)) throw new LanternError(`--control-vector strength must be a finite number, got '${tail}'`);
  return spec;
}

export function controlVectorOption(): Option {
  return new Option('--control-vector <file[:strength]>', 'with a gguf: backend: a llama.cpp control vector to apply, times strength (default 1); repeat to sum several')
    .argParser((v: string, prev: ControlVectorSpec[] | undefined) => [...(prev ?? []), parseControlVector(v)]);
}

/** The parsed vectors, refused unless the backend is a GGUF file. */
export function controlVectorsFor(opts: Record<string, any>, backend: string): ControlVectorSpec[] | undefined {
  const vectors = opts.controlVector as ControlVectorSpec[] | undefined;
  if (vectors?.length && !backend.startsWith('gguf:')) throw new LanternError(`--control-vector applies only to a gguf:<file.gguf> backend, not '${backend}'`);
  return vectors;
}
