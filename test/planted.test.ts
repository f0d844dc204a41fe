// Planted-circuit models: each kind is written to a folder, loaded back as an ordinary GPT-2
// checkpoint, and run on its task. Every planted mechanism is checked three ways: the behaviour
// (accuracy above a threshold), the internals the description names (attention patterns, neuron
// activations), and ablations — zeroing a planted component collapses the behaviour, zeroing a
// control does not — and a sweep over every head (and neuron) finds exactly the components the
// description lists as planted. Prompts use seeds other than the ones the description's metrics
// were measured on.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runLantern } from './helpers.js';
import { Tensor } from '../src/engine/tensor.js';
import { LanternError } from '../src/errors.js';
import type { HookedTransformer, RunOptions } from '../src/models/hooked.js';
import { loadModel } from '../src/models/load.js';
import { readSafetensorsHeader } from '../src/models/safetensors.js';
import { Tokenizer } from '../src/models/tokenizer.js';
import {
  ablationOf, copySuppressionPrompts, inductionPrompts, ioiPrompts, makePlanted, ngramPrompts, NGRAM, PLANTED_KINDS, plantedKind,
  plantedPrompts, readPlantedDescription, successor,
} from '../src/models/planted/index.js';
import type { PlantedComponent, PlantedDescription, PlantedPrompt } from '../src/models/planted/index.js';


let tmp: string;
const loaded: HookedTransformer[] = [];

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lantern-planted-'));
});

afterAll(async () => {
  for (const m of loaded) await m.executor.dropWeights(m.weights);
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** Writes a kind (measuring its metrics), then loads the folder as any GPT-2 checkpoint. */
async function plant(kind: string): Promise<{ folder: string; desc: PlantedDescription; model: HookedTransformer }> {
  const folder = path.join(tmp, kind);
  const desc = await makePlanted(kind, folder);
  const model = await loadModel(folder);
  loaded.push(model);
  return { folder, desc, model };
}

// ---- ablations, written out here rather than taken from the library

function zeroHead(layer: number, head: number): RunOptions {
  return { interventions: [{ hook: `blocks.${layer}.attn.hook_z`, op: 'zero', heads: [head] }] };
}

/** Interventions select positions and heads, not neurons: a callback zeroes one neuron of hook_post. */
function zeroNeuron(layer: number, neuron: number): RunOptions {
  return {
    callbacks: {
      [`blocks.${layer}.mlp.hook_post`]: (act) => {
        const F = act.shape[2];
        const d = Float32Array.from(act.f32);
        for (let i = neuron; i < d.length; i += F) d[i] = 0;
        return Tensor.f32(d, act.shape);
      },
    },
  };
}

function ablate(c: PlantedComponent): RunOptions {
  return c.head !== undefined ? zeroHead(c.layer, c.head) : zeroNeuron(c.layer, c.neuron!);
}

function row(logits: Tensor, b: number, pos: number): Float32Array {
  const [, T, V] = logits.shape;
  return logits.f32.subarray((b * T + pos) * V, (b * T + pos + 1) * V);
}

function argmax(r: Float32Array): number {
  let best = 0;
  for (let i = 1; i < r.length; i++) if (r[i] > r[best]) best = i;
  return best;
}

const mean = (xs: number[]) => xs.reduce((p, q) => p + q, 0) / xs.length;

/** pattern[b, head, q, k]. */
function attn(pattern: Tensor, b: number, head: number, q: number, k: number): number {
  const [, H, T] = pattern.shape;
  return pattern.f32[((b * H + head) * T + q) * T + k];
}

/** Top-1 accuracy over the prompts' targets, per target label. */
async function accuracies(model: HookedTransformer, prompts: PlantedPrompt[], opts: RunOptions = {}): Promise<Record<string, number>> {
  const { logits } = await model.runWithHooks(prompts.map((p) => p.tokens), opts);
  const hits: Record<string, number[]> = {};
  prompts.forEach((p, b) => p.targets.forEach((t) => (hits[t.label] ??= []).push(argmax(row(logits, b, t.pos)) === t.answer ? 1 : 0)));
  return Object.fromEntries(Object.entries(hits).map(([k, v]) => [k, mean(v)]));
}

/** Top-1 accuracy over the prompts' targets (optionally one label only). */
async function accuracy(model: HookedTransformer, prompts: PlantedPrompt[], opts: RunOptions = {}, label?: string): Promise<number> {
  const { logits } = await model.runWithHooks(prompts.map((p) => p.tokens), opts);
  const hits: number[] = [];
  prompts.forEach((p, b) => p.targets.forEach((t) => {
    if (!label || t.label === label) hits.push(argmax(row(logits, b, t.pos)) === t.answer ? 1 : 0);
  }));
  return mean(hits);
}

/** Every head whose zero-ablation brings `score` below `threshold`, as 'L.H'. */
async function headsThatMatter(model: HookedTransformer, score: (opts: RunOptions) => Promise<number>, threshold: number): Promise<string[]> {
  const found: string[] = [];
  for (let l = 0; l < model.cfg.nLayers; l++) {
    for (let h = 0; h < model.cfg.nHeads; h++) if ((await score(zeroHead(l, h))) < threshold) found.push(`${l}.${h}`);
  }
  return found;
}

const headName = (c: PlantedComponent) => `${c.layer}.${c.head}`;

function expectOrdinaryGpt2Folder(folder: string, desc: PlantedDescription, model: HookedTransformer): void {
  expect(fs.readdirSync(folder).sort()).toEqual(['config.json', 'model.safetensors', 'planted.json', 'tokenizer.json']);
  const c = JSON.parse(fs.readFileSync(path.join(folder, 'config.json'), 'utf8'));
  expect(c).toMatchObject({
    model_type: 'gpt2', architectures: ['GPT2LMHeadModel'], n_layer: desc.config.nLayers, n_embd: desc.config.dModel, n_head: desc.config.nHeads,
    n_inner: desc.config.dMlp, n_positions: desc.config.nCtx, vocab_size: desc.config.dVocab, activation_function: 'gelu_new', tie_word_embeddings: false,
  });
  // Tensor names as save_pretrained writes a GPT2LMHeadModel.
  const names = [...readSafetensorsHeader(path.join(folder, 'model.safetensors')).tensors.keys()];
  expect(names).toContain('lm_head.weight');
  expect(names).toContain('transformer.h.0.attn.c_attn.weight');
  expect(names.every((n) => n === 'lm_head.weight' || n.startsWith('transformer.'))).toBe(true);
  expect(readPlantedDescription(folder)).toEqual(desc);
  expect(model.cfg.dModel).toBe(desc.config.dModel);
  // Every residual block lies inside d_model, without overlaps.
  const used = desc.residual.flatMap((b) => [...Array.from({ length: b.dims[1] - b.dims[0] }, (_, i) => b.dims[0] + i), ...(b.balanceDim === null ? [] : [b.balanceDim])]);
  expect(new Set(used).size).toBe(used.length);
  expect(Math.max(...used)).toBeLessThan(desc.config.dModel);
}

function expectTextRoundTrips(folder: string, prompts: PlantedPrompt[]): void {
  const tok = Tokenizer.fromFile(path.join(folder, 'tokenizer.json'));
  for (const p of prompts) expect(tok.encode(p.text)).toEqual(p.tokens);
}

// ---------------------------------------------------------------------------------------------

describe('induction', () => {
  let folder: string;
  let desc: PlantedDescription;
  let model: HookedTransformer;
  const prompts = inductionPrompts(50, { half: 20, seed: 101 });
  beforeAll(async () => ({ folder, desc, model } = await plant('induction')));

  it('is an ordinary GPT-2 folder whose description names a previous-token head and an induction head', () => {
    expectOrdinaryGpt2Folder(folder, desc, model);
    expectTextRoundTrips(folder, prompts.slice(0, 5));
    expect(desc.mechanism.map((c) => [c.role, c.component, c.head])).toEqual([
      ['previous-token head', 'blocks.0.attn', 2],
      ['induction head', 'blocks.1.attn', 1],
    ]);
    expect(desc.controls.every((c) => !c.planted)).toBe(true);
  });

  it('predicts the second half of 50 repeated random sequences (accuracy >= 0.95)', async () => {
    expect(await accuracy(model, prompts)).toBeGreaterThanOrEqual(0.95);
    expect(desc.metrics!.accuracy).toBeGreaterThanOrEqual(0.95);
  });

  it('the previous-token head attends to t-1 and the induction head to the token after the earlier copy (mean weight >= 0.9)', async () => {
    const [pt, ind] = desc.mechanism;
    const hooks = ['blocks.0.attn.hook_pattern', 'blocks.1.attn.hook_pattern'];
    const { cache } = await model.runWithCache(prompts.map((p) => p.tokens), hooks);
    const prev: number[] = [];
    const induct: number[] = [];
    prompts.forEach((p, b) => {
      const L = p.tokens.length / 2;
      for (let t = 1; t < 2 * L; t++) prev.push(attn(cache.get(hooks[pt.layer]), b, pt.head!, t, t - 1));
      for (let t = L; t < 2 * L; t++) induct.push(attn(cache.get(hooks[ind.layer]), b, ind.head!, t, t - L + 1));
    });
    expect(mean(prev)).toBeGreaterThanOrEqual(0.9);
    expect(mean(induct)).toBeGreaterThanOrEqual(0.9);
    expect(Math.abs(mean(prev) - desc.metrics!.prevTokenAttention)).toBeLessThan(0.01);
    expect(Math.abs(mean(induct) - desc.metrics!.inductionAttention)).toBeLessThan(0.01);
  });

  it('ablating either planted head collapses accuracy to near chance; ablating a distractor does not', async () => {
    for (const c of desc.mechanism) expect(await accuracy(model, prompts, ablate(c)), c.role).toBeLessThanOrEqual(0.1);
    for (const c of desc.controls) expect(await accuracy(model, prompts, ablate(c)), c.role).toBeGreaterThanOrEqual(0.95);
    expect(desc.metrics!.accuracyPrevTokenHeadAblated).toBeLessThanOrEqual(0.1);
    expect(desc.metrics!.accuracyInductionHeadAblated).toBeLessThanOrEqual(0.1);
  });

  it('the heads whose ablation breaks induction are exactly the planted ones', async () => {
    const found = await headsThatMatter(model, (o) => accuracy(model, prompts, o), 0.5);
    expect(found.sort()).toEqual(desc.mechanism.map(headName).sort());
  });
});

describe('copy-suppression', () => {
  let folder: string;
  let desc: PlantedDescription;
  let model: HookedTransformer;
  const prompts = copySuppressionPrompts(50, { seed: 102 });
  beforeAll(async () => ({ folder, desc, model } = await plant('copy-suppression')));

  /** Accuracy, the copied token's logit, and each planted head's attention to position 0, over all targets. */
  async function run(opts: RunOptions = {}) {
    const [cp, sp] = desc.mechanism;
    const hooks = [`blocks.${cp.layer}.attn.hook_pattern`, `blocks.${sp.layer}.attn.hook_pattern`];
    const { logits, cache } = await model.runWithHooks(prompts.map((p) => p.tokens), { ...opts, cache: hooks });
    const acc: number[] = [];
    const copiedTop: number[] = [];
    const copied: number[] = [];
    const cpAttn: number[] = [];
    const spAttn: number[] = [];
    prompts.forEach((p, b) => p.targets.forEach(({ pos, answer, foil }) => {
      const r = row(logits, b, pos);
      acc.push(argmax(r) === answer ? 1 : 0);
      copiedTop.push(argmax(r) === foil ? 1 : 0);
      copied.push(r[foil!]);
      cpAttn.push(attn(cache.get(hooks[0]), b, cp.head!, pos, 0));
      spAttn.push(attn(cache.get(hooks[1]), b, sp.head!, pos, 0));
    }));
    return { accuracy: mean(acc), copiedTop: mean(copiedTop), copiedLogit: mean(copied), copyAttn: mean(cpAttn), suppAttn: mean(spAttn) };
  }

  it('is an ordinary GPT-2 folder; the task is the letter successor with the first token as the copied foil', () => {
    expectOrdinaryGpt2Folder(folder, desc, model);
    expectTextRoundTrips(folder, prompts.slice(0, 5));
    expect(desc.mechanism.map((c) => [c.role, c.layer, c.head])).toEqual([['copying head', 0, 1], ['copy-suppression head', 1, 2]]);
    for (const p of prompts) for (const t of p.targets) expect([t.answer, t.foil]).toEqual([successor(p.tokens[t.pos]), p.tokens[0]]);
  });

  it('clean: the copying head and the suppression head both attend to the copied token, whose logit is cancelled', async () => {
    const r = await run();
    expect(r.accuracy).toBeGreaterThanOrEqual(0.95);
    expect(r.copyAttn).toBeGreaterThanOrEqual(0.9);
    expect(r.suppAttn).toBeGreaterThanOrEqual(0.9);
    expect(Math.abs(r.copiedLogit)).toBeLessThan(0.5);
    expect(Math.abs(r.accuracy - desc.metrics!.accuracy)).toBeLessThan(0.05);
  });

  it('ablating the suppression head: the copied token wins (accuracy collapses)', async () => {
    const r = await run(ablate(desc.mechanism[1]));
    expect(r.accuracy).toBeLessThanOrEqual(0.05);
    expect(r.copiedTop).toBeGreaterThanOrEqual(0.95);
    expect(r.copiedLogit).toBeGreaterThan(0.7 * desc.constants.copyLogit);
    expect(desc.metrics!.accuracySuppressionHeadAblated).toBeLessThanOrEqual(0.05);
  });

  it('ablating the copying head: the suppression head stops attending to the copied token; the copy had ~zero total effect', async () => {
    const r = await run(ablate(desc.mechanism[0]));
    expect(r.suppAttn).toBeLessThanOrEqual(0.1);
    expect(r.accuracy).toBeGreaterThanOrEqual(0.95);
    expect(Math.abs(r.copiedLogit)).toBeLessThan(0.5);
    // Its direct effect is large: with the suppression head gone, removing the copy drops the copied logit by ~beta.
    const noSupp = await run(ablate(desc.mechanism[1]));
    const neither = await run({ interventions: [...zeroHead(0, 1).interventions!, ...zeroHead(1, 2).interventions!] });
    expect(noSupp.copiedLogit - neither.copiedLogit).toBeGreaterThan(0.7 * desc.constants.copyLogit);
  });

  it('ablating a distractor changes nothing; only the suppression head breaks the task', async () => {
    for (const c of desc.controls) expect((await run(ablate(c))).accuracy, c.role).toBeGreaterThanOrEqual(0.95);
    const found = await headsThatMatter(model, async (o) => (await run(o)).accuracy, 0.5);
    expect(found).toEqual([headName(desc.mechanism[1])]);
  });
});

describe('ngram-neuron', () => {
  let folder: string;
  let desc: PlantedDescription;
  let model: HookedTransformer;
  const prompts = ngramPrompts(50, { seed: 103 });
  const post = 'blocks.0.mlp.hook_post';
  beforeAll(async () => ({ folder, desc, model } = await plant('ngram-neuron')));

  it('is an ordinary GPT-2 folder whose description names the two neurons and their tokens', () => {
    expectOrdinaryGpt2Folder(folder, desc, model);
    expectTextRoundTrips(folder, prompts.slice(0, 5));
    const [ng, pos, pt] = desc.mechanism;
    expect([ng.role, ng.component, ng.neuron, ng.tokens]).toEqual(['n-gram neuron', 'blocks.0.mlp', NGRAM.ngramNeuron, { first: 83, second: 71, predicts: 68 }]);
    expect([pos.role, pos.neuron, pos.positions]).toEqual(['positional neuron', NGRAM.positionalNeuron, [16, 17, 18, 19, 20, 21, 22, 23]]);
    expect([pt.role, pt.head]).toEqual(['previous-token head', 3]);
    for (const p of prompts) expect(p.targets.filter((t) => t.label === 'ngram')).toHaveLength(2);
  });

  it('predicts "e" after every "t h" and "." at positions 16-23, and neither elsewhere', async () => {
    const acc = await accuracies(model, prompts);
    expect(acc.ngram).toBeGreaterThanOrEqual(0.95);
    expect(acc.positional).toBeGreaterThanOrEqual(0.95);
    const { logits } = await model.runWithHooks(prompts.map((p) => p.tokens), {});
    let wrong = 0;
    prompts.forEach((p, b) => p.tokens.forEach((_, t) => {
      const top = argmax(row(logits, b, t));
      const target = p.targets.find((x) => x.pos === t);
      if (!target && (top === NGRAM.predicts || top === NGRAM.positionalPredicts)) wrong++;
    }));
    expect(wrong).toBe(0);
  });

  it('the n-gram neuron fires exactly on the bigram; the positional neuron exactly in its range, whatever the tokens', async () => {
    const { cache } = await model.runWithCache(prompts.map((p) => p.tokens), [post]);
    const act = cache.get(post);
    const F = act.shape[2];
    prompts.forEach((p, b) => p.tokens.forEach((tok, t) => {
      const a = (n: number) => act.f32[(b * p.tokens.length + t) * F + n];
      const bigram = t > 0 && p.tokens[t - 1] === NGRAM.first && tok === NGRAM.second;
      if (bigram) expect(a(NGRAM.ngramNeuron)).toBeGreaterThan(3);
      else expect(Math.abs(a(NGRAM.ngramNeuron))).toBeLessThan(0.01);
      if (t >= 16 && t < 24) expect(a(NGRAM.positionalNeuron)).toBeGreaterThan(3);
      else expect(Math.abs(a(NGRAM.positionalNeuron))).toBeLessThan(0.01);
    }));
  });

  it('ablating a planted neuron (or the previous-token head) collapses its behaviour only; ablating a control changes nothing', async () => {
    const [ng, pos, pt] = desc.mechanism;
    const noNgram = await accuracies(model, prompts, ablate(ng));
    expect(noNgram.ngram).toBeLessThanOrEqual(0.05);
    expect(noNgram.positional).toBeGreaterThanOrEqual(0.95);
    const noPos = await accuracies(model, prompts, ablate(pos));
    expect(noPos.positional).toBeLessThanOrEqual(0.05);
    expect(noPos.ngram).toBeGreaterThanOrEqual(0.95);
    const noPrev = await accuracies(model, prompts, ablate(pt));
    expect(noPrev.ngram).toBeLessThanOrEqual(0.05);
    expect(noPrev.positional).toBeGreaterThanOrEqual(0.95);
    for (const c of desc.controls) {
      const r = await accuracies(model, prompts, ablate(c));
      expect(Math.min(r.ngram, r.positional), c.role).toBeGreaterThanOrEqual(0.95);
    }
    // The library's ablation helper does the same as the callback written here.
    expect(await accuracies(model, prompts, ablationOf(ng))).toEqual(noNgram);
    expect(desc.metrics!.ngramAccuracyNgramNeuronAblated).toBeLessThanOrEqual(0.05);
    expect(desc.metrics!.positionalAccuracyPositionalNeuronAblated).toBeLessThanOrEqual(0.05);
  });

  it('a sweep over every neuron and head finds exactly the described components', async () => {
    const score = async (o: RunOptions) => Math.min(...Object.values(await accuracies(model, prompts, o)));
    const neurons: number[] = [];
    for (let n = 0; n < model.cfg.dMlp; n++) if ((await score(zeroNeuron(0, n))) < 0.5) neurons.push(n);
    expect(neurons).toEqual(desc.mechanism.filter((c) => c.neuron !== undefined).map((c) => c.neuron).sort((a, b) => a! - b!));
    expect(await headsThatMatter(model, score, 0.5)).toEqual(desc.mechanism.filter((c) => c.head !== undefined).map(headName));
  });
});

describe('ioi', () => {
  let folder: string;
  let desc: PlantedDescription;
  let model: HookedTransformer;
  const prompts = ioiPrompts(50, { seed: 104 });
  beforeAll(async () => ({ folder, desc, model } = await plant('ioi')));

  /** Accuracy and mean logit(IO) - logit(S) at the final position. */
  async function run(opts: RunOptions = {}) {
    const { logits } = await model.runWithHooks(prompts.map((p) => p.tokens), opts);
    const acc: number[] = [];
    const diff: number[] = [];
    prompts.forEach((p, b) => {
      const m = p.meta as Record<string, number>;
      const r = row(logits, b, m.end);
      acc.push(argmax(r) === m.io ? 1 : 0);
      diff.push(r[m.io] - r[m.s]);
    });
    return { accuracy: mean(acc), logitDiff: mean(diff) };
  }

  it('is an ordinary GPT-2 folder; the template sentences tokenize to the prompts', () => {
    expectOrdinaryGpt2Folder(folder, desc, model);
    expectTextRoundTrips(folder, prompts);
    expect(prompts[0].text).toMatch(/^(When|After|While) \w+ and \w+ .*, \w+ \w+ a \w+ to$/);
    expect(new Set(prompts.map((p) => p.meta.order))).toEqual(new Set(['ABBA', 'BABA']));
    expect(desc.mechanism.map((c) => [c.role, c.layer, c.head])).toEqual([['name mover head', 1, 2], ['S-inhibition head', 0, 1]]);
  });

  it('predicts the indirect object; the name mover moves it from its position to the final one', async () => {
    const r = await run();
    expect(r.accuracy).toBeGreaterThanOrEqual(0.95);
    expect(r.logitDiff).toBeGreaterThan(5);
    const [nm, si] = desc.mechanism;
    const hooks = ['blocks.0.attn.hook_pattern', 'blocks.1.attn.hook_pattern'];
    const { cache } = await model.runWithCache(prompts.map((p) => p.tokens), hooks);
    const toIO = prompts.map((p, b) => attn(cache.get(hooks[nm.layer]), b, nm.head!, Number(p.meta.end), Number(p.meta.ioPos)));
    const toS2 = prompts.map((p, b) => attn(cache.get(hooks[si.layer]), b, si.head!, Number(p.meta.end), Number(p.meta.s2Pos)));
    expect(mean(toIO)).toBeGreaterThanOrEqual(0.9);
    expect(mean(toS2)).toBeGreaterThanOrEqual(0.9);
    expect(Math.abs(r.logitDiff - desc.metrics!.logitDiff)).toBeLessThan(0.5);
  });

  it('ablating the name mover removes the answer; ablating S-inhibition flips it to S; distractors change nothing', async () => {
    const noMover = await run(ablate(desc.mechanism[0]));
    expect(noMover.accuracy).toBeLessThanOrEqual(0.05);
    expect(Math.abs(noMover.logitDiff)).toBeLessThan(0.5);
    const noInhibition = await run(ablate(desc.mechanism[1]));
    expect(noInhibition.accuracy).toBeLessThanOrEqual(0.05);
    expect(noInhibition.logitDiff).toBeLessThan(0);
    for (const c of desc.controls) {
      const r = await run(ablate(c));
      expect(r.accuracy, c.role).toBeGreaterThanOrEqual(0.95);
      expect(r.logitDiff, c.role).toBeGreaterThan(5);
    }
    expect(await headsThatMatter(model, async (o) => (await run(o)).accuracy, 0.5)).toEqual(desc.mechanism.map(headName).sort());
  });
});

// ---------------------------------------------------------------------------------------------

describe('library and CLI', () => {
  it('lists the kinds, gives prompts per kind, and rejects unknown kinds with a LanternError', async () => {
    expect([...PLANTED_KINDS]).toEqual(['induction', 'copy-suppression', 'ngram-neuron', 'ioi', 'successor']);
    for (const k of PLANTED_KINDS) {
      expect(plantedPrompts(k, 3)).toHaveLength(3);
      expect(plantedPrompts(k, 3, 7)).toEqual(plantedPrompts(k, 3, 7));
    }
    expect(() => plantedKind('induktion')).toThrow(LanternError);
    expect(() => plantedKind('induktion')).toThrow(/did you mean 'induction'/);
    await expect(makePlanted('nope', path.join(tmp, 'nope'))).rejects.toThrow(LanternError);
    expect(fs.existsSync(path.join(tmp, 'nope'))).toBe(false);
    expect(() => readPlantedDescription(tmp)).toThrow(LanternError);
  });

  const lantern = (...args: string[]) => runLantern(args, tmp);

  it('lantern make-planted: --help lists the kinds, an unknown kind is one error line, a kind writes the model and a summary', async () => {
    const [help, bad, ok] = await Promise.all([
      lantern('make-planted', '--help'),
      lantern('make-planted', 'inductoin', path.join(tmp, 'cli-bad')),
      lantern('make-planted', 'ioi', path.join(tmp, 'cli-ioi')),
    ]);
    expect(help.code).toBe(0);
    for (const k of PLANTED_KINDS) expect(help.stdout).toContain(`  ${k} `);

    expect(bad.code).toBe(1);
    expect(bad.stdout).toBe('');
    expect(bad.stderr.trim().split('\n')).toEqual([
      "lantern: error: unknown planted kind 'inductoin' (did you mean 'induction'?); kinds: induction, copy-suppression, ngram-neuron, ioi, successor",
    ]);
    expect(fs.existsSync(path.join(tmp, 'cli-bad'))).toBe(false);

    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/^wrote planted 'ioi' to .*cli-ioi \(2 layers, d_model 192, 4 heads/);
    expect(ok.stdout).toContain('blocks.1.attn head 2');
    expect(ok.stdout).toMatch(/accuracy\s+1\n/);
    const d = readPlantedDescription(path.join(tmp, 'cli-ioi'));
    expect(d.kind).toBe('ioi');
    expect(d.metrics!.accuracy).toBeGreaterThanOrEqual(0.95);
  });
});
