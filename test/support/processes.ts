/**
 * Lantern processes the tests start from the sources (with tsx), offline: `lantern worker` on a
 * Redis the test started, with its stderr kept for assertions and stopped with SIGTERM as a user
 * would stop it (shards in flight finish); and `lantern serve` on a free port, with its URL.
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

/** Starts `lantern serve --port 0 <args>` with LANTERN_HOME `home` and resolves with it and its URL once it listens; the caller kills it. */
export function startLanternServe(args: string[], home: string): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src', 'interfaces', 'cli', 'main.ts'), 'serve', '--port', '0', ...args], {
    cwd: ROOT, env: { ...process.env, LANTERN_HOME: home, HF_HUB_OFFLINE: '1' }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d) => {
      out += d;
      const m = /Lantern Workbench: (http:\/\/\S+?)\/?\s/.exec(out);
      if (m) resolve({ child, url: m[1] });
    });
    child.on('exit', (c) => reject(new Error(`serve exited ${c}`)));
  });
}
