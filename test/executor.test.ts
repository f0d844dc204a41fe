import { describe, it, expect, afterAll } from 'vitest';
import { Graph } from '../src/engine/graph/ir.js';
import { toOnnx } from '../src/engine/graph/onnx.js';
import { Executor } from '../src/engine/runtime/executor.js';
import { Tensor } from '../src/engine/tensor.js';

const ex = new Executor({ maxSessions: 2 });
afterAll(() => ex.close());

const affine = (k: number) => () => {
  const g = new Graph();
  const x = g.input('x', 'float32', ['n', 2]);
  g.output('y', g.add(g.matmul(x, g.input('w', 'float32', [2, 2])), g.scalar(k)));
  return g;
};

describe('executor', () => {
  it('compiles once per signature and feeds registered weights by name', async () => {
    let builds = 0;
    const build = () => { builds++; return affine(1)(); };
    const w = await ex.registerWeights({ w: Tensor.f32([1, 2, 3, 4], [2, 2]) });
    for (const n of [1, 3, 5]) {
      const x = Tensor.f32(Array.from({ length: 2 * n }, (_, i) => i), [n, 2]);
      const y = (await ex.run('affine', build, { x }, { weights: [w] })).y;
      // y = x @ [[1,2],[3,4]] + 1, by hand
      const expected = Array.from({ length: n }, (_, r) => [2 * r * 1 + (2 * r + 1) * 3 + 1, 2 * r * 2 + (2 * r + 1) * 4 + 1]).flat();
      expect(y.toArray()).toEqual(expected);
      expect(y.shape).toEqual([n, 2]);
    }
    expect(builds).toBe(1);
    expect(await ex.readWeights(w, ['w'])).toMatchObject({ w: { shape: [2, 2] } });
    expect((await ex.readWeights(w, ['w'])).w.toArray()).toEqual([1, 2, 3, 4]);
  });

  it('evicts the least recently used session beyond maxSessions and recompiles it on demand', async () => {
    const w = await ex.registerWeights({ w: Tensor.f32([1, 0, 0, 1], [2, 2]) });
    const counts = [0, 0, 0];
    const x = Tensor.f32([1, 1], [1, 2]);
    const run = async (k: number) => (await ex.run(`lru${k}`, () => { counts[k]++; return affine(k)(); }, { x }, { weights: [w] })).y.toArray();
    expect(await run(0)).toEqual([1, 1]);
    expect(await run(1)).toEqual([2, 2]);
    expect(await run(2)).toEqual([3, 3]); // evicts lru0
    expect(await run(1)).toEqual([2, 2]);
    expect(await run(0)).toEqual([1, 1]);
    expect(counts).toEqual([2, 1, 1]);
  });

  it('reports a missing input as an error instead of crashing the worker', async () => {
    await expect(ex.run('affine-missing', affine(0), { x: Tensor.f32([1, 1], [1, 2]) })).rejects.toThrow(/not fed: w/);
    // and the worker still works afterwards
    const w = await ex.registerWeights({ w: Tensor.f32([2, 0, 0, 2], [2, 2]) });
    expect((await ex.run('affine-missing', affine(0), { x: Tensor.f32([1, 1], [1, 2]) }, { weights: [w] })).y.toArray()).toEqual([2, 2]);
  });

  it('keeps the calling thread responsive while a long graph runs', async () => {
    // ~1 s of matmuls: a blocked event loop would deliver no timer ticks until the end.
    const build = () => {
      const g = new Graph();
      let x = g.input('x', 'float32', [512, 512]);
      for (let i = 0; i < 60; i++) x = g.tanh(g.matmul(x, g.input(`m${i}`, 'float32', [512, 512])));
      g.output('y', x);
      return g;
    };
    const m = Tensor.f32(new Float32Array(512 * 512).fill(0.001), [512, 512]);
    const feeds: Record<string, Tensor> = { x: m };
    for (let i = 0; i < 60; i++) feeds[`m${i}`] = m;
    await ex.compile('long', build);
    let ticks = 0;
    const timer = setInterval(() => ticks++, 5);
    const t0 = performance.now();
    let runs = 0;
    while (performance.now() - t0 < 300) { await ex.run('long', build, feeds); runs++; }
    clearInterval(timer);
    const elapsed = performance.now() - t0;
    // A free event loop ticks about elapsed/5 times; allow heavy scheduling noise, but far more than one tick per run.
    expect(ticks).toBeGreaterThan(Math.max(3 * runs, elapsed / 50));
  });

  it('emits negative int64 attributes as 10-byte varints (ONNX protobuf)', () => {
    const g = new Graph();
    const x = g.input('x', 'float32', [2]);
    g.output('y', g.node('Softmax', [x], { axis: -1 }, [['float32', [2]]])[0]);
    const bytes = toOnnx(g);
    // tag of AttributeProto.i (field 3, varint) followed by -1 as ten bytes 0xff.. 0x01
    const hex = Buffer.from(bytes).toString('hex');
    expect(hex).toContain('18ffffffffffffffffff01');
  });
});

describe('process lifetime', () => {
  it('an executor that never ran anything does not keep the process alive', async () => {
    const { spawn } = await import('node:child_process');
    const { createRequire } = await import('node:module');
    const { pathToFileURL } = await import('node:url');
    const fs = await import('node:fs');
    const os = await import('node:os');
    const path = await import('node:path');
    const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lantern-executor-'));
    const script = path.join(dir, 'make.mts');
    fs.writeFileSync(script, `import { defaultExecutor } from ${JSON.stringify(path.resolve('src/engine/runtime/executor.ts'))};\ndefaultExecutor();\nconsole.log('made');\n`);
    const child = spawn(process.execPath, ['--import', tsx, script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    clearTimeout(timer);
    fs.rmSync(dir, { recursive: true, force: true });
    expect(out).toContain('made');
    expect(code, out).toBe(0);
  }, 30_000);
});
