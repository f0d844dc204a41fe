/**
 * What the job-queue tests share: `lantern worker` processes (run from the sources with tsx) on a
 * Redis the test started, with their stderr kept for assertions, and stopped with SIGTERM as a user
 * would stop them (shards in flight finish).
 *
 *   const redis = await startLocalRedis(tmp);
 *   const worker = startLanternWorker(redis.url, path.join(tmp, 'home'), { args: ['--threads', '1'] });
 *   ...
 *   await stopLanternWorker(worker);
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { ROOT } from '../helpers.js';

/** A running `lantern worker` and everything it has written to stderr so far. */
export interface LanternWorker {
  child: ChildProcess;
  log: string;
}

/** Starts `lantern worker --queue <url>` with LANTERN_HOME `home`, offline; `args` adds flags, `env` variables (an API key, say). */
export function startLanternWorker(url: string, home: string, opts: { args?: string[]; env?: Record<string, string> } = {}): LanternWorker {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src', 'interfaces', 'cli', 'main.ts'), 'worker', '--queue', url, ...(opts.args ?? [])], {
    cwd: ROOT, env: { ...process.env, LANTERN_HOME: home, HF_HUB_OFFLINE: '1', FORCE_COLOR: '0', ...opts.env }, stdio: ['ignore', 'ignore', 'pipe'],
  });
  const worker = { child, log: '' };
  child.stderr!.on('data', (d) => (worker.log += d));
  return worker;
}

/** Stops a worker with SIGTERM and waits for it to exit (at once if it already has). */
export async function stopLanternWorker(worker: LanternWorker | undefined): Promise<void> {
  const child = worker?.child;
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  await new Promise((resolve) => { child.once('exit', resolve); child.kill('SIGTERM'); });
}
