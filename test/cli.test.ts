// The `lantern` CLI as a user runs it: a subprocess (`node --import tsx src/interfaces/cli/main.ts`)
// with its own LANTERN_HOME and an offline Hugging Face cache. Its numbers are checked against the
// same model loaded in this process (top-k by a softmax computed here, activations by runWithCache);
// its errors against the rule that bad input gives exactly one `lantern: error:` line and exit 1.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HookedTransformer } from '../src/models/hooked.js';
import { loadModel } from '../src/models/load.js';
import { readFloat32, readInt32, readSafetensorsHeader } from '../src/models/safetensors.js';
import { TINY_GPT2 } from '../src/models/random.js';
import { maxAbsDiff, runLantern, expectOneLineError, CliRun } from './helpers.js';
import { Tensor } from '../src/engine/tensor.js';

const ROOT = path.resolve(__dirname, '..');
const MAIN = path.join(ROOT, 'src', 'interfaces', 'cli', 'main.ts');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

let tmp: string;
let tiny: string; // make-random defaults: TINY_GPT2, seed 0
let ctx8: string; // context of 8 tokens
let model: HookedTransformer;

const lantern = (...args: string[]) => runLantern(args, tmp);

function expectOk(r: CliRun): void {
  expect(r.code, r.stderr).toBe(0);
}

/** Bad input: exit 1, nothing on stdout, exactly one `lantern: error:` line on stderr, no stack trace. */

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lantern-cli-'));
  tiny = path.join(tmp, 'tiny');
  ctx8 = path.join(tmp, 'ctx8');
  const [a, b] = await Promise.all([lantern('make-random', tiny), lantern('make-random', ctx8, '--ctx', '8', '--seed', '3')]);
  expectOk(a);
  expectOk(b);
  expect(a.stdout).toMatch(/wrote a random gpt2 \(2 layers, d_model 64, 4 heads, vocab 1000\)/);
  model = await loadModel(tiny, { progress: false });
});

afterAll(async () => {
  if (model) await model.executor.dropWeights(model.weights);
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('lantern make-random', () => {
  it('writes a Hugging Face folder with the asked shape', async () => {
    expect(fs.readdirSync(tiny).sort()).toEqual(['config.json', 'model.safetensors', 'tokenizer.json']);
    expect(model.cfg).toEqual(TINY_GPT2);
    const c = JSON.parse(fs.readFileSync(path.join(ctx8, 'config.json'), 'utf8'));
    expect([c.model_type, c.n_positions, c.n_layer, c.n_embd, c.vocab_size, c.lantern_random_seed]).toEqual(['gpt2', 8, 2, 64, 1000, 3]);
  });

  it('--arch writes any family; hooks lists its hook names (kv heads, rotary, no pos_embed)', async () => {
    const dir = path.join(tmp, 'qwen3');
    const r = await lantern('make-random', dir, '--arch', 'qwen3', '--layers', '1', '--seed', '2');
    expectOk(r);
    expect(r.stdout).toMatch(/wrote a random qwen3 \(1 layers, d_model 64, 4 heads \(2 key\/value\), vocab 1000\)/);
    const c = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
    expect([c.model_type, c.num_hidden_layers, c.num_key_value_heads, c.head_dim]).toEqual(['qwen3', 1, 2, 24]);
    const h = await lantern('hooks', '--model', dir);
    expectOk(h);
    const names = h.stdout.trim().split('\n');
    expect(names).toContain('blocks.0.attn.hook_rot_k');
    expect(names).toContain('blocks.0.mlp.hook_pre_linear');
    expect(names).not.toContain('hook_pos_embed');
    const bad = await lantern('make-random', path.join(tmp, 'never'), '--arch', 'llama', '--preset', 'gpt2-small');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/--preset gpt2-small is not a llama preset; presets: tiny, llama-3.2-1b/);
  });
});

describe('lantern forward', () => {
  it('--json: top-5 tokens and probabilities equal a softmax of the in-process logits', async () => {
    const text = 'The quick brown fox jumps over the';
    const r = await lantern('forward', '--model', tiny, '--text', text, '--top-k', '5', '--json');
    expectOk(r);
    const out = JSON.parse(r.stdout);
    const tokens = model.toTokens(text);
    expect(out.tokens).toEqual(tokens);
    expect(out.tokenStrings).toEqual(model.tokenStrings(tokens));
    expect(out.settings).toEqual({ topK: 5, cache: [] });

    const logits = await model.run([tokens]);
    const V = TINY_GPT2.dVocab;
    const row = Array.from(logits.f32.subarray((tokens.length - 1) * V, tokens.length * V));
    const max = Math.max(...row);
    const z = row.reduce((s, x) => s + Math.exp(x - max), 0);
    const top = row.map((logit, id) => ({ id, logit })).sort((a, b) => b.logit - a.logit).slice(0, 5);
    expect(top[3].logit).toBeGreaterThan(top[4].logit); // no tie decides the order
    expect(out.predictions.map((p: { id: number }) => p.id)).toEqual(top.map((t) => t.id));
    out.predictions.forEach((p: { id: number; token: string; prob: number; logit: number }, i: number) => {
      expect(p.token).toBe(model.tokenStrings([top[i].id])[0]);
      expect(p.logit).toBe(top[i].logit);
      expect(Math.abs(p.prob - Math.exp(top[i].logit - max) / z)).toBeLessThan(1e-12);
    });
  });

  it('--out with --cache writes logits, int32 tokens and the activations, equal to runWithCache', async () => {
    const text = 'Hello world, this is Lantern';
    const file = path.join(tmp, 'run.safetensors');
    const hooks = ['blocks.0.hook_resid_post', 'blocks.1.attn.hook_pattern'];
    const r = await lantern('forward', '--model', tiny, '--text', text, '--out', file, '--cache', hooks.join(','));
    expectOk(r);
    expect(r.stdout).toContain(`saved logits and 2 activations to ${file}`);

    const tokens = model.toTokens(text);
    const T = tokens.length;
    const { logits, cache } = await model.runWithCache([tokens], hooks);
    const header = readSafetensorsHeader(file);
    expect([...header.tensors.keys()].sort()).toEqual(['blocks.0.hook_resid_post', 'blocks.1.attn.hook_pattern', 'logits', 'tokens']);
    const saved = (name: string) => {
      const e = header.tensors.get(name)!;
      expect(e.dtype).toBe('F32');
      return Tensor.f32(readFloat32(header, name), e.shape);
    };
    expect(header.tensors.get('tokens')!.dtype).toBe('I32');
    expect(header.tensors.get('tokens')!.shape).toEqual([1, T]);
    expect(Array.from(readInt32(header, 'tokens'))).toEqual(tokens);
    expect(saved('logits').shape).toEqual([1, T, TINY_GPT2.dVocab]);
    expect(maxAbsDiff(saved('logits'), logits)).toBe(0);
    expect(saved('blocks.0.hook_resid_post').shape).toEqual([1, T, TINY_GPT2.dModel]);
    expect(maxAbsDiff(saved('blocks.0.hook_resid_post'), cache.get('blocks.0.hook_resid_post'))).toBe(0);
    const pattern = saved('blocks.1.attn.hook_pattern');
    expect(pattern.shape).toEqual([1, TINY_GPT2.nHeads, T, T]);
    expect(maxAbsDiff(pattern, cache.get('blocks.1.attn.hook_pattern'))).toBe(0);
    // And it is an attention pattern: causal rows summing to 1.
    for (let h = 0; h < TINY_GPT2.nHeads; h++) {
      for (let q = 0; q < T; q++) {
        let sum = 0;
        for (let k = 0; k < T; k++) {
          const p = pattern.at(0, h, q, k);
          if (k > q) expect(p).toBe(0);
          sum += p;
        }
        expect(Math.abs(sum - 1)).toBeLessThan(1e-5);
      }
    }
  });
});

describe('bad input: one `lantern: error:` line, exit 1, no stack trace', () => {
  it('every case', async () => {
    const llama = path.join(tmp, 'llama');
    fs.cpSync(tiny, llama, { recursive: true });
    const cfgFile = path.join(llama, 'config.json');
    fs.writeFileSync(cfgFile, fs.readFileSync(cfgFile, 'utf8').replace('"model_type": "gpt2"', '"model_type": "bert"'));
    const broken = path.join(tmp, 'broken');
    fs.cpSync(tiny, broken, { recursive: true });
    fs.writeFileSync(path.join(broken, 'config.json'), '{"model_type": "gpt2",');
    const aFile = path.join(tmp, 'a-file');
    fs.writeFileSync(aFile, '');
    const out = path.join(tmp, 'never.safetensors');
    const missing = path.join(tmp, 'missing-model');

    const cases: [string[], RegExp][] = [
      [['forward', '--model', missing, '--text', 'hi'], /No model folder at .*missing-model/],
      [['hooks', '--model', missing], /No model folder at .*missing-model/],
      [
        ['forward', '--model', tiny, '--text', 'hi', '--cache', 'blocks.0.hook_resid_pst', '--out', out],
        /unknown hook 'blocks\.0\.hook_resid_pst'; did you mean 'blocks\.0\.hook_resid_post'/,
      ],
      [['forward', '--model', tiny, '--text', 'hi', '--cache', 'blocks.0.hook_resid_post'], /--cache needs --out/],
      [['forward', '--model', tiny, '--text', 'hi', '--top-k', '0'], /--top-k must be a positive integer, got '0'/],
      [['forward', '--model', ctx8, '--text', 'one two three four five six seven eight nine ten'], /is \d+ tokens, longer than the model's context of 8/],
      [['forward', '--model', llama, '--text', 'hi'], /model_type="bert"; supported architectures: gpt2, llama/],
      [['forward', '--model', broken, '--text', 'hi'], /config\.json is not valid JSON/],
      [['forward', '--model', tiny, '--text', 'hi', '--out', path.join(tmp, 'no-dir', 'x.safetensors')], /--out .* folder .*no-dir does not exist/],
      [['forward', '--model', tiny, '--text', 'hi', '--out', path.join(tmp, 'x.bin')], /--out must name a \.safetensors file/],
      [['lens', '--model', tiny, '--text', 'hi', '--json', ''], /--json needs a file name/],
      [['lens', '--model', tiny, '--text', 'hi', '--html', ''], /--html needs a file name/],
      [['make-random', path.join(aFile, 'model')], /cannot write the model to .*a-file\/model: ENOTDIR/],
      [['make-random', path.join(tmp, 'never'), '--seed', 'abc'], /--seed must be an integer from 0 to 4294967295, got 'abc'/],
      [['make-random', path.join(tmp, 'never'), '--heads', '5'], /--d-model 64 is not divisible by --heads 5/],
      // Commander's own usage errors, in the same one-line form.
      [['forward', '--model', tiny, '--text', 'hi', '--bogus'], /^lantern: error: unknown option '--bogus'; see 'lantern forward --help'$/],
      [['forward', '--model', tiny], /required option '-t, --text <text>' not specified/],
      [['make-random', path.join(tmp, 'never'), '--dtype', 'F64'], /'F64' is invalid. Allowed choices are F32, F16, BF16/],
      [['frobnicate'], /^lantern: error: unknown command 'frobnicate'; see 'lantern --help'$/],
    ];
    const runs = await Promise.all(cases.map(([args]) => lantern(...args)));
    runs.forEach((r, i) => expectOneLineError(r, cases[i][1], `lantern ${cases[i][0].join(' ')}`));
    expect(fs.existsSync(out)).toBe(false);
    expect(fs.existsSync(path.join(tmp, 'never'))).toBe(false);
  });
});

describe('--help and hooks', () => {
  it('--help works for the top level and every command', async () => {
    const [top, forward, hooks, makeRandom] = await Promise.all([
      lantern('--help'),
      lantern('forward', '--help'),
      lantern('hooks', '--help'),
      lantern('make-random', '--help'),
    ]);
    for (const r of [top, forward, hooks, makeRandom]) {
      expectOk(r);
      expect(r.stderr).toBe('');
    }
    expect(top.stdout).toMatch(/^Usage: lantern \[options\] \[command\]/);
    for (const c of ['forward', 'hooks', 'make-random']) expect(top.stdout).toContain(c);
    expect(forward.stdout).toMatch(/^Usage: lantern forward \[options\]/);
    for (const flag of ['--model', '--text', '--top-k', '--cache', '--out', '--json']) expect(forward.stdout).toContain(flag);
    expect(hooks.stdout).toMatch(/^Usage: lantern hooks \[options\]/);
    expect(makeRandom.stdout).toMatch(/^Usage: lantern make-random \[options\] <folder>/);
    for (const flag of ['--preset', '--layers', '--ctx', '--seed', '--dtype']) expect(makeRandom.stdout).toContain(flag);
  });

  it('hooks --model lists the TransformerLens hook names', async () => {
    const r = await lantern('hooks', '--model', tiny);
    expectOk(r);
    const names = r.stdout.trim().split('\n');
    // TransformerLens's names for a 2-layer GPT-2: embed, pos_embed, 19 per block, ln_final's two.
    const perBlock = [
      'hook_resid_pre', 'ln1.hook_scale', 'ln1.hook_normalized', 'attn.hook_q', 'attn.hook_k', 'attn.hook_v',
      'attn.hook_attn_scores', 'attn.hook_pattern', 'attn.hook_z', 'attn.hook_result', 'hook_attn_out', 'hook_resid_mid',
      'hook_mlp_in', 'ln2.hook_scale', 'ln2.hook_normalized', 'mlp.hook_pre', 'mlp.hook_post', 'hook_mlp_out', 'hook_resid_post',
    ];
    const expected = ['hook_embed', 'hook_pos_embed', ...[0, 1].flatMap((l) => perBlock.map((n) => `blocks.${l}.${n}`)), 'ln_final.hook_scale', 'ln_final.hook_normalized'];
    expect([...names].sort()).toEqual([...expected].sort());
    expect(names).toContain('blocks.0.attn.hook_pattern');
    expect(names.indexOf('blocks.0.hook_resid_pre')).toBeLessThan(names.indexOf('blocks.1.hook_resid_post')); // execution order
  });

  it('hooks | head -1: a reader that stops early is not an error', async () => {
    // 300 layers: ~170 kB of names, more than a pipe holds, so writing outlives `head` for sure.
    const deep = path.join(tmp, 'deep');
    fs.mkdirSync(deep);
    const config = JSON.parse(fs.readFileSync(path.join(tiny, 'config.json'), 'utf8'));
    fs.writeFileSync(path.join(deep, 'config.json'), JSON.stringify({ ...config, n_layer: 300 }));
    const r = await new Promise<CliRun>((resolve, reject) => {
      const cmd = `"${process.execPath}" --import tsx "${MAIN}" hooks --model "${deep}" | head -1; exit \${PIPESTATUS[0]}`;
      const child = spawn('bash', ['-c', cmd], { cwd: ROOT, env: { ...process.env, LANTERN_HOME: path.join(tmp, 'lantern-home'), HF_HUB_OFFLINE: '1' } });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d) => (stdout += d));
      child.stderr.on('data', (d) => (stderr += d));
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, stdout, stderr }));
    });
    expect(r.stdout).toBe('hook_embed\n');
    expect(r.stderr).toBe(''); // no EPIPE stack trace
    expect(r.code).toBe(0);
  });
});
