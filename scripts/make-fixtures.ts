/**
 * Regenerates the committed reference fixtures in fixtures/ (offline; needs Debian's
 * python3-torch). Lantern writes seeded random models; the independent float64 PyTorch
 * implementation in scripts/reference/ computes logits, every hook and an embedding gradient.
 * Tests rebuild the same weights from the seed and compare; they never run Python.
 *
 *   npx tsx scripts/make-fixtures.ts
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { writeRandomModel, TINY_GPT2, GPT2_SMALL } from '../src/models/random.js';
import { FIXTURES, FAMILY_FIXTURES, FULL_SIZE_FIXTURES } from '../test/fixtures.js';
import { readSafetensorsHeader, readFloat32, writeSafetensors, WritableTensor } from '../src/models/safetensors.js';
import { architectureFor } from '../src/models/architectures/index.js';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
fs.mkdirSync(path.join(root, 'fixtures', 'families'), { recursive: true });

// Every other family: logits, every hook and an embedding gradient from the independent float64
// reference (scripts/reference/families_reference.py) on each family's tiny random model.
// --full-size: only the full-size shapes below.
for (const f of process.argv.includes('--full-size') ? [] : FAMILY_FIXTURES) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lantern-fixture-'));
  writeRandomModel(dir, architectureFor(f.arch).presets.tiny, { seed: f.seed, matrixStd: f.matrixStd });
  const out = path.join(root, 'fixtures', f.file);
  execFileSync('/usr/bin/python3', [
    path.join(root, 'scripts/reference/families_reference.py'), '--selfcheck', '--grad', `${f.grad.pos}:${f.grad.token}`, dir, out, f.tokens.join(','),
  ], { stdio: 'inherit' });
  fs.rmSync(dir, { recursive: true, force: true });
  console.log(`wrote ${out} (${(fs.statSync(out).size / 1e3).toFixed(0)} kB)`);
}
// Full-size shapes: the same reference, then only the last position's logits are kept.
for (const f of FULL_SIZE_FIXTURES) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lantern-fixture-'));
  writeRandomModel(dir, { ...architectureFor(f.arch).presets[f.preset], nLayers: f.layers }, { seed: f.seed });
  const full = path.join(dir, 'reference.safetensors');
  execFileSync('/usr/bin/python3', [path.join(root, 'scripts/reference/families_reference.py'), dir, full, f.tokens.join(',')], { stdio: 'inherit' });
  const header = readSafetensorsHeader(full);
  const kept: Record<string, WritableTensor> = {};
  // Every hook of the first and last layers, every layer's resid_post, the embedding and final norm.
  const keep = (name: string) => {
    const l = /^blocks\.(\d+)\./.exec(name)?.[1];
    return l === undefined || Number(l) === 0 || Number(l) === f.layers - 1 || name.endsWith('.hook_resid_post');
  };
  for (const [name, entry] of header.tensors) {
    if (name === 'tokens' || !keep(name)) continue;
    const data = readFloat32(header, name);
    if (name === 'logits') {
      const V = entry.shape[2];
      kept.logits_last = { dtype: 'F32', shape: [V], data: data.slice(data.length - V) };
    } else kept[name] = { dtype: 'F32', shape: entry.shape, data };
  }
  const out = path.join(root, 'fixtures', f.file);
  writeSafetensors(out, kept, { generator: 'scripts/reference/families_reference.py' });
  fs.rmSync(dir, { recursive: true, force: true });
  console.log(`wrote ${out} (${(fs.statSync(out).size / 1e6).toFixed(1)} MB)`);
}
if (process.argv.includes('--families')) process.exit(0);

for (const f of FIXTURES) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lantern-fixture-'));
  const cfg = f.preset === 'tiny' ? TINY_GPT2 : GPT2_SMALL;
  writeRandomModel(dir, cfg, { seed: f.seed });
  const out = path.join(root, 'fixtures', f.file);
  execFileSync('/usr/bin/python3', [
    path.join(root, 'scripts/reference/gpt2_reference.py'), '--normalized-after-affine',
    '--grad', `${f.grad.pos}:${f.grad.token}`, dir, out, f.tokens.join(','),
  ], { stdio: 'inherit' });
  fs.rmSync(dir, { recursive: true, force: true });
  console.log(`wrote ${out} (${(fs.statSync(out).size / 1e6).toFixed(1)} MB)`);
}

// Integrated gradients (float64 PyTorch, numpy's Gauss–Legendre nodes) on the tiny fixture's model
// and prompt, for test/attribution-layers.test.ts.
{
  const f = FIXTURES.find((x) => x.preset === 'tiny')!;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lantern-fixture-'));
  writeRandomModel(dir, TINY_GPT2, { seed: f.seed });
  const out = path.join(root, 'fixtures', 'ig-tiny-seed7.safetensors');
  execFileSync('/usr/bin/python3', [path.join(root, 'scripts/reference/ig_reference.py'), dir, out, f.tokens.join(','), String(f.grad.token), '16'], { stdio: 'inherit' });
  fs.rmSync(dir, { recursive: true, force: true });
  console.log(`wrote ${out}`);
}
