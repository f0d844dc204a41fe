/** `lantern jobs list|show|cancel`: the jobs in a jobs folder and where each stands. */
import fs from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import { LanternError } from '../../errors.js';
import { cancelJob, describeFailure, jobStatus, JobStatus, jobSubject, listJobs, queueFile, removeJob } from '../../engine/jobs/store.js';
import { defaultJobsDir, jobsDirOption } from './job-options.js';

const dirOf = (opts: Record<string, any>) => path.resolve(opts.jobsDir ?? defaultJobsDir());

export function jobsCommand(program: Command): void {
  const jobs = program.command('jobs').description('Dataset-scale jobs (lantern activations, attribute --data, neurons, features dashboards|explain, judge, chainpoll, sae train --harvest): list them, show one shard by shard, cancel or remove one.');
  jobsDirOption(jobs.command('list').description('Every job in the jobs folder, with its shards done.'))
    .option('--json', 'print the list as JSON')
    .action((opts) => {
      const dir = dirOf(opts);
      const rows = listJobs(dir);
      if (opts.json) {
        console.log(JSON.stringify(rows.map(({ id, status: s, error }) => (s ? { id, analysis: s.job.analysis, model: jobSubject(s.job), dataset: s.job.dataset, shards: s.job.shards.length, done: s.done.length, failed: s.failed.length, state: s.state } : { id, state: 'unreadable', error })), null, 2));
        return;
      }
      if (!rows.length) { console.log(`no jobs in ${dir}`); return; }
      console.log(`${'job'.padEnd(32)} ${'state'.padEnd(10)} ${'shards'.padStart(9)}  model / dataset`);
      for (const { id, status: s, error } of rows) {
        console.log(s ? `${id.padEnd(32)} ${s.state.padEnd(10)} ${`${s.done.length}/${s.job.shards.length}`.padStart(9)}  ${jobSubject(s.job)} / ${s.job.dataset.name || '-'} (${s.job.dataset.examples} examples)`
          : `${id.padEnd(32)} ${'unreadable'.padEnd(10)} ${'-'.padStart(9)}  ${error}`);
      }
    });
  jobsDirOption(jobs.command('show').description('One job: its settings and each shard (done, by which worker, how long; or why it failed).'))
    .argument('<id>', 'the job id (see lantern jobs list)')
    .option('--json', 'print the status as JSON')
    .action((id: string, opts) => {
      const s = jobStatus(dirOf(opts), id);
      if (opts.json) { console.log(JSON.stringify(s, null, 2)); return; }
      const { job } = s;
      console.log(`job ${job.id}: ${job.analysis}, ${s.state}, ${s.done.length} of ${job.shards.length} shards done`);
      console.log(job.model ? `model: ${job.model.source} (weights sha256 ${job.model.weightsSha256.slice(0, 16)}…)` : `backend: ${jobSubject(job)}`);
      console.log(`dataset: ${job.dataset.name || '-'}, ${job.dataset.examples} examples; seed ${job.seed}`);
      console.log(`settings: ${JSON.stringify(job.settings)}`);
      const done = new Map(s.done.map((r) => [r.shard, r]));
      const failed = new Map(s.failed.map((f) => [f.shard, f]));
      job.shards.forEach(([a, b], i) => {
        const r = done.get(i);
        const f = failed.get(i);
        console.log(r ? `  shard ${i} (examples ${a}–${b - 1}): done by ${r.worker} in ${r.ms} ms, ${r.bytes} bytes, sha256 ${r.sha256.slice(0, 16)}…`
          : f ? `  ${describeFailure(f)} (failed on ${f.worker})` : `  shard ${i} (examples ${a}–${b - 1}): not done`);
      });
    });
  jobsDirOption(jobs.command('cancel').description('Stop a job: runners take no more of its shards (finished shards are kept; running the command again resumes it).'))
    .argument('<id>', 'the job id (see lantern jobs list)')
    .option('--queue <redis-url>', 'also remove its shards waiting on this queue (default: the queue it was submitted to, when that is recorded without a password)')
    .action(async (id: string, opts) => {
      const dir = dirOf(opts);
      cancelJob(dir, id);
      let queue = '';
      // Loaded only for a job on a queue: BullMQ and ioredis are needed by nothing else here.
      if (opts.queue) {
        const { dequeueJob } = await import('../../engine/jobs/queue.js');
        queue = `, ${await dequeueJob(String(opts.queue), id)} removed from the queue`;
      } else if (fs.existsSync(queueFile(dir, id))) {
        const r = (await (await import('../../engine/jobs/queue.js')).dequeueRecorded(dir, id))!;
        queue = r.error ? `; ${r.error}` : `, ${r.removed} removed from the queue at ${r.url}`;
      }
      const s = jobStatus(dir, id);
      console.log(`cancelled job ${id} (${s.done.length} of ${s.job.shards.length} shards done${queue})`);
    });
  jobsDirOption(jobs.command('remove').description('Delete a job\'s folder (its shards and records) once its result is merged; running the command again computes every shard anew.'))
    .argument('<id>', 'the job id (see lantern jobs list)')
    .action((id: string, opts) => {
      const dir = dirOf(opts);
      let s: JobStatus | undefined;
      try {
        s = jobStatus(dir, id);
      } catch (e) {
        if (!(e instanceof LanternError)) throw e; // a damaged job is removed all the same; an unknown one is refused below
      }
      removeJob(dir, id);
      console.log(`removed job ${id} (${s ? `${s.done.length} of ${s.job.shards.length} shards were done` : 'its job.json was unreadable'})`);
    });
}
