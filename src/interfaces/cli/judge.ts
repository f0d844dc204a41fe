/**
 * `lantern judge single|pairwise|reference`: LLM-as-a-judge over question and answer files, with
 * position swapping, repeated samples, several templates, critique checks and human agreement.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import { LanternError } from '../../errors.js';
import { loadAnswers, loadHumanLabels, loadQuestions } from '../../methods/evaluation/data.js';
import { planPairwise, planSingle, type HumanScore, type PairwiseReport, type SingleReport } from '../../methods/evaluation/judge.js';
import { judgeAnalysis, judgeJob, judgeJobContext } from '../../methods/evaluation/judge-job.js';
import { readRows } from '../../methods/representations/data.js';
import { TEMPLATES } from '../../methods/evaluation/templates.js';
import { positiveInt } from './forward.js';
import { addRunOptions, backendOption, fmt, backendRecord, openRunner, usageLine, writeReport } from './eval-options.js';
import { defaultJobsDir, jobOptions, runAndMerge } from './job-options.js';

const MODES = ['single', 'pairwise', 'reference'] as const;

function printSingle(r: SingleReport): void {
  console.log(`single grading by ${r.judge} (templates: ${(r.settings.templates as string[]).join(', ')})`);
  console.log('model'.padEnd(20) + 'mean score  judged  errors');
  for (const m of [...r.models].sort((a, b) => (b.mean ?? -Infinity) - (a.mean ?? -Infinity))) console.log(`${m.model.padEnd(20)}${fmt(m.mean, 2).padStart(10)}  ${String(m.n).padStart(6)}  ${String(m.errors).padStart(6)}`);
  console.log(`length bias: correlation of score with answer length ${fmt(r.lengthBias.correlation)}`);
  if (r.flipNoise) console.log(`flip noise: ${fmt(r.flipNoise.fractionChanged)} of ${r.flipNoise.items} repeated items changed score (mean std ${fmt(r.flipNoise.meanStd)})`);
  if (r.templateSensitivity) console.log(`template sensitivity: ${fmt(r.templateSensitivity.fractionChanged)} of items changed score across templates (mean |Δ| ${fmt(r.templateSensitivity.meanAbsDiff)})`);
  if (r.critique) console.log(`critique: ${r.critique.disagreements.length} of ${r.critique.checked} scores do not follow from their critique`);
  if (r.human) console.log(`human agreement: ${fmt(r.human.percent)} exact, Cohen's kappa ${fmt(r.human.kappa)}, Spearman ${fmt(r.human.spearman)} (n = ${r.human.n})`);
  for (const j of r.judgments.filter((x) => x.error)) console.log(`error: ${j.question} / ${j.model} (${j.template}, sample ${j.sample}): ${j.error}`);
}

function printPairwise(r: PairwiseReport): void {
  console.log(`pairwise comparison by ${r.judge} (templates: ${(r.settings.templates as string[]).join(', ')})`);
  console.log('model'.padEnd(20) + '  wins  losses  ties');
  for (const m of r.models) console.log(`${m.model.padEnd(20)}${String(m.wins).padStart(6)}${String(m.losses).padStart(8)}${String(m.ties).padStart(6)}`);
  if (r.positionConsistency) console.log(`position consistency: ${fmt(r.positionConsistency.rate)} (${r.positionConsistency.consistent} of ${r.positionConsistency.n} comparisons survive the swap)`);
  if (r.positionPreference && r.positionPreference.inconsistent) console.log(`position preference: of ${r.positionPreference.inconsistent} flips, ${r.positionPreference.first} favour the first answer, ${r.positionPreference.second} the second`);
  console.log(`length bias: the longer answer won ${fmt(r.lengthBias.longerWinRate)} of ${r.lengthBias.n} decided judgments (correlation ${fmt(r.lengthBias.correlation)})`);
  if (r.flipNoise) console.log(`flip noise: ${fmt(r.flipNoise.rate)} of repeated-sample pairs disagree`);
  if (r.templateSensitivity) console.log(`template sensitivity: ${fmt(r.templateSensitivity.fractionChanged)} of comparisons change verdict across templates`);
  if (r.critique) console.log(`critique: ${r.critique.disagreements.length} of ${r.critique.checked} verdicts do not follow from their critique`);
  if (r.human) console.log(`human agreement: ${fmt(r.human.percent)}, Cohen's kappa ${fmt(r.human.kappa)} (n = ${r.human.n})`);
  for (const j of r.judgments.filter((x) => x.error)) console.log(`error: ${j.question} / ${j.x} vs ${j.y} (${j.template}, ${j.order}, sample ${j.sample}): ${j.error}`);
}

export function judgeCommand(program: Command): void {
  const cmd = program
    .command('judge')
    .description('LLM-as-a-judge: grade answers (single), compare them two by two with positions swapped (pairwise), or grade against references (reference); runs as a resumable job over the answers or question × pair items (--shard-size items per shard; --queue for lantern worker processes).')
    .argument('<mode>', `one of ${MODES.join(', ')}`)
    .requiredOption('--questions <file>', 'questions (.jsonl/.csv/.parquet; MT-Bench style: question_id, turns, reference)')
    .requiredOption('--answers <files...>', 'answers (question_id, model, turns or choices[0].turns); one file per model works too')
    .addOption(backendOption())
    .option('--template <names...>', `judge templates: built-in (${Object.keys(TEMPLATES).join(', ')}) or .json/.txt files; several measure template sensitivity`)
    .option('--pairwise', 'with reference: compare two by two against the reference instead of grading each answer')
    .option('--samples <n>', 'judgments per item and template (default 1); more measure flip noise', positiveInt('--samples'))
    .option('--temperature <t>', 'judge temperature (default 0, or 0.7 with several samples)', (v) => {
      const t = Number(v);
      if (!Number.isFinite(t) || t < 0) throw new LanternError(`--temperature must be a number ≥ 0, got '${v}'`);
      return t;
    })
    .option('--max-tokens <n>', 'most tokens per judge answer (default 512)', positiveInt('--max-tokens'))
    .option('--no-swap', 'pairwise: do not repeat each comparison with positions swapped')
    .option('--human <file>', 'human labels: pairwise (question_id, model_a, model_b, winner) or single (question_id, model, score)')
    .option('--battles <file>', 'pairwise: also write the final verdicts as arena battles (JSONL)');
  // --concurrency is already the requests in flight; a job's shards take turns on the judge.
  jobOptions(addRunOptions(cmd), { concurrency: false, shardSize: 'items per shard: an answer (single) or a question and pair of models (pairwise), with all its templates and samples (default 256)' }).action(async (mode: string, opts: Record<string, any>) => {
    if (!(MODES as readonly string[]).includes(mode)) throw new LanternError(`unknown judge mode '${mode}'; use ${MODES.join(', ')}`);
    const questions = await loadQuestions(opts.questions);
    const answers = await loadAnswers(opts.answers);
    const pairwise = mode === 'pairwise' || (mode === 'reference' && opts.pairwise);
    const human = opts.human ? (pairwise ? await loadHumanLabels(opts.human) : undefined) : undefined;
    const humanScores: HumanScore[] | undefined = opts.human && !pairwise
      ? (await readRows(opts.human)).map((row, i) => {
        const score = Number(row.score);
        if (!Number.isFinite(score)) throw new LanternError(`${opts.human} row ${i + 1}: score ${JSON.stringify(row.score)} is not a number`);
        return { questionId: String(row.question_id), model: String(row.model), score };
      })
      : undefined;
    const common = {
      questions, answers, templates: opts.template, reference: mode === 'reference', samples: opts.samples, temperature: opts.temperature,
      maxTokens: opts.maxTokens, seed: opts.seed,
    };
    // Checked before the judge is opened (a lantern judge loads a model).
    const { plan, items } = pairwise ? planPairwise({ ...common, swap: opts.swap }) : planSingle(common);
    const dir = path.resolve(opts.jobsDir ?? defaultJobsDir());
    const backend = backendRecord(opts.judge, opts);
    const { runner, done } = await openRunner(opts, `judge ${mode}`);
    let report: PairwiseReport | SingleReport;
    try {
      const job = judgeJob(dir, { id: runner.judge.id, ...backend }, plan, items, { shardSize: opts.shardSize, dataset: [opts.questions, ...opts.answers].join(' ') });
      // In this process the runner's request count is the progress; on a queue, the shards done.
      report = await runAndMerge(opts, dir, job, judgeAnalysis, judgeJobContext(dir, job, runner), { store: runner.store, runId: opts.runId, human: pairwise ? human : humanScores }, Boolean(opts.queue));
    } finally {
      await done();
    }
    if (report.method === 'judge-pairwise') {
      printPairwise(report);
      if (opts.battles) {
        fs.writeFileSync(opts.battles, report.battles.map((b) => JSON.stringify(b)).join('\n') + '\n');
        console.log(`saved ${report.battles.length} battles to ${opts.battles}`);
      }
    } else printSingle(report);
    console.log(usageLine(report.usage));
    console.log(`run ${report.runId}${opts.store ? ` stored in ${opts.store}` : ''}`);
    writeReport(opts, report);
  });
}
