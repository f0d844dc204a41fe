/**
 * A throwaway Redis (Debian's redis-server) on a loopback port, with no persistence, for the jobs
 * benchmark and tests: they run real queues without touching a system service.
 */
import { spawn, spawnSync, ChildProcess } from 'node:child_process';
import net from 'node:net';
import { Redis } from 'ioredis';

/** A free TCP port on 127.0.0.1 (free when asked; nothing holds it afterwards). */
export async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise((r) => srv.close(r));
  return port;
}

/** A running redis-server started by {@link startLocalRedis}. */
export interface LocalRedis {
  port: number;
  /** redis://127.0.0.1:port */
  url: string;
  /** Kills the server (SIGKILL, as a crash would) and waits for it to exit. */
  stop(): Promise<void>;
}

/** Starts redis-server on `port` (a free one by default) with its files in `dir`, and waits until it answers PING. */
export async function startLocalRedis(dir: string, port?: number): Promise<LocalRedis> {
  if (spawnSync('redis-server', ['--version']).error) throw new Error('redis-server is not installed (Debian: apt-get install redis-server; .ci/run installs it)');
  const p = port ?? (await freePort());
  const url = `redis://127.0.0.1:${p}`;
  const child: ChildProcess = spawn('redis-server', ['--port', String(p), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' });
  const stop = () => new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  client.on('error', () => {}); // refused until the server listens: retried below
  try {
    for (let i = 0; ; i++) {
      try { await client.connect(); await client.ping(); break; } catch { if (i > 100) throw new Error('redis-server did not start'); await new Promise((r) => setTimeout(r, 100)); }
    }
  } catch (e) {
    await stop();
    throw e;
  } finally {
    client.disconnect();
  }
  return { port: p, url, stop };
}
