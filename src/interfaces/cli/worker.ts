/** `lantern worker`: takes shards of any job from a Redis queue and runs them, until stopped. */
import { Command, Option } from 'commander';
import { Executor } from '../../engine/runtime/executor.js';
import { ANALYSES } from './job-options.js';
import { positiveInt } from './forward.js';

export function workerCommand(program: Command): void {
  program.command('worker')
    .description('Run shards of jobs submitted with --queue (lantern activations ... --queue redis://...), until stopped (Ctrl-C lets shards in flight finish).')
    .requiredOption('--queue <redis-url>', 'the Redis the jobs were submitted to, e.g. redis://127.0.0.1:6379')
    .addOption(new Option('--concurrency <n>', 'shards this worker runs at once').default(1).argParser(positiveInt('--concurrency')))
    .addOption(new Option('--threads <n>', 'compute threads for ONNX Runtime (default: all cores; 1 when several workers share a machine)').argParser(positiveInt('--threads')))
    .addOption(new Option('--stall-timeout <ms>', 'how long a shard whose worker stopped answering waits before another worker takes it').default(30_000).argParser(positiveInt('--stall-timeout')))
    .addHelpText('after', '\nExample (two workers on a 2-core machine, sharing /shared/jobs with the submitter):\n  lantern worker --queue redis://127.0.0.1:6379 --threads 1 &\n  lantern worker --queue redis://127.0.0.1:6379 --threads 1 &')
    .action(async (opts) => {
      // Loaded here: BullMQ and ioredis are needed only by workers and queue submitters.
      const { startWorker } = await import('../../engine/jobs/queue.js');
      const executor = opts.threads ? new Executor({ threads: opts.threads }) : undefined;
      const worker = startWorker(String(opts.queue), ANALYSES, {
        concurrency: opts.concurrency, executor, stallMs: opts.stallTimeout,
        log: (line) => console.error(`[worker ${process.pid}] ${line}`),
      });
      worker.ready.then(
        () => console.error(`[worker ${process.pid}] waiting for shards on ${opts.queue}`),
        (e: Error) => console.error(`[worker ${process.pid}] ${e.message}; still trying`),
      );
      await new Promise<void>((resolve) => {
        const stop = () => void worker.close().then(resolve);
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
      await executor?.close();
    });
}
