// Path patching reports progress in forwards (sequences) run out of the total it will run: checked
// against an executor that counts every sequence it actually runs, independently of the method.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HookedTransformer } from '../src/models/hooked.js';
import { loadModel } from '../src/models/load.js';
import { makePlanted } from '../src/models/planted/index.js';
import { taskExamples } from '../src/methods/circuits/data.js';
import { pathPatching, pathPatchingSweep } from '../src/methods/circuits/path-patching.js';
import { Executor } from '../src/engine/runtime/executor.js';

/** Counts the sequences every graph run feeds the model (the batch of its token ids). */
class CountingExecutor extends Executor {
  sequences = 0;
  override async run(...args: Parameters<Executor['run']>): ReturnType<Executor['run']> {
    const tokens = (args[2] as Record<string, { shape: readonly number[] }>).tokens;
    if (tokens) this.sequences += tokens.shape[0];
    return super.run(...args);
  }
}

let tmp: string;
let model: HookedTransformer;
const executor = new CountingExecutor();

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lantern-path-progress-'));
  await makePlanted('induction', path.join(tmp, 'induction'), { measure: false });
  model = await loadModel(path.join(tmp, 'induction'), { progress: false, executor });
});

afterAll(async () => {
  await model?.executor.dropWeights(model.weights);
  await executor.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** Runs `f` recording each progress call beside the sequences the executor had run by then. */
async function record(f: (progress: (done: number, total: number) => void) => Promise<unknown>) {
  const before = executor.sequences;
  const calls: { done: number; total: number; ran: number }[] = [];
  await f((done, total) => calls.push({ done, total, ran: executor.sequences - before }));
  return { calls, ran: executor.sequences - before };
}

describe('path patching progress', () => {
  it('a sweep counts every forward it runs, rising monotonically to the total, which is all the work', async () => {
    const examples = taskExamples(model, 'induction', 6, 1);
    // Batches of 16 rows: several calls, so progress moves between them.
    const { calls, ran } = await record((progress) => pathPatchingSweep(model, 'L0H2', { examples, metric: 'logprob', batchSize: 16, progress }));
    expect(calls.length).toBeGreaterThan(3);
    const total = calls[0].total;
    expect(calls.every((c) => c.total === total)).toBe(true);
    // Each report is exactly the forwards done by then, as the executor counted them.
    for (const c of calls) expect(c.done).toBe(c.ran);
    const done = calls.map((c) => c.done);
    expect([...done].sort((a, b) => a - b)).toEqual(done);
    expect(done[0]).toBe(0);
    expect(done.at(-1)).toBe(total);
    expect(ran).toBe(total);
  }, 60_000);

  it('one multi-step path: the same accounting', async () => {
    const examples = taskExamples(model, 'induction', 4, 2);
    const { calls, ran } = await record((progress) => pathPatching(model, [['input', 'L0H2.v', 'L1H1.k', 'logits'], ['L0H2', 'L1H1.k']], { examples, metric: 'logprob', batchSize: 4, progress }));
    for (const c of calls) expect(c.done).toBe(c.ran);
    expect(calls.at(-1)!.done).toBe(ran);
    expect(calls.at(-1)!.total).toBe(ran);
  }, 60_000);
});
