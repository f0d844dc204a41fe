/** The --task file and the number lists that `lantern interchange`, `das` and `scrub` share. */
import fs from 'node:fs';
import { LanternError } from '../../errors.js';
import type { HookedTransformer } from '../../models/hooked.js';
import { alignmentTaskFromJson } from '../../methods/causal-abstraction/task-json.js';

/** Reads a JSON file, naming the file when it is missing or not JSON. */
export function readJsonFile(file: string, what: string): unknown {
  if (!fs.existsSync(file)) throw new LanternError(`${what} ${file} does not exist`);
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new LanternError(`${what} ${file} is not valid JSON: ${(e as Error).message}`);
  }
}

/** The alignment task of a --task file. */
export function loadTaskFile(model: HookedTransformer, file: string) {
  return alignmentTaskFromJson(model, readJsonFile(file, '--task'));
}

/** "-1,-2" -> [-1, -2], with a clear error for anything that is not a list of integers. */
export function parseIntList(s: string, flag: string): number[] {
  const xs = s.split(',').map((x) => x.trim()).filter((x) => x !== '').map(Number);
  if (xs.length === 0 || xs.some((x) => !Number.isInteger(x))) throw new LanternError(`${flag} must be a comma-separated list of integers, got '${s}'`);
  return xs;
}

/** A positive integer flag. */
export function parseCount(s: string | number, flag: string): number {
  const n = Number(s);
  if (!Number.isInteger(n) || n < 1) throw new LanternError(`${flag} must be a positive integer, got '${s}'`);
  return n;
}
