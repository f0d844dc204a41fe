import path from 'node:path';
import { Command, Option } from 'commander';
import { LanternError } from '../../errors.js';
import { buildServer } from '../server/app.js';
import { servedId } from '../server/openai-compat.js';
import { defaultModel } from './defaults.js';
import { nonNegativeInt } from './forward.js';
import { DEFAULT_LIMITS } from '../server/limits.js';
import { modelOption, revisionOption } from './model-option.js';

/** '2G', '512M', '1.5GiB' or a byte count. */
export function parseSize(flag: string) {
  return (v: string): number => {
    const m = /^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(i?B)?\s*$/i.exec(v);
    const n = m ? Number(m[1]) * 1024 ** ' KMGT'.indexOf((m[2] || ' ').toUpperCase()) : NaN;
    if (!(n >= 1) || !Number.isFinite(n)) throw new LanternError(`${flag} must be a size such as 2G, 512M or a byte count, got '${v}'`);
    return Math.floor(n);
  };
}

function positiveNumber(flag: string) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !(n > 0) || !Number.isFinite(n)) throw new LanternError(`${flag} must be a positive number, got '${v}'`);
    return n;
  };
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1']);

export function serveCommand(program: Command): void {
  program
    .command('serve')
    .description('Start the Workbench: the web app and its JSON API (OpenAPI at /api/openapi.json).')
    .addOption(modelOption('the default model (default: the bundled model)')).addOption(revisionOption())
    .addOption(new Option('-p, --port <n>', 'port (0: any free port)').default(8484).argParser(nonNegativeInt('--port', 65535)))
    .option('--host <host>', 'address to listen on; anything but loopback needs --token', '127.0.0.1')
    .option('--token <token>', 'a secret every request must carry (Authorization: Bearer, or ?token= in the URL)')
    .option('--data-dir <folder>', 'where saved runs live (default: <LANTERN_HOME>/workbench)')
    .option('--jobs-dir <dir>', 'the jobs folder the Dataset jobs view lists (default: <LANTERN_HOME>/jobs, as for lantern jobs)')
    .addOption(new Option('--max-job-seconds <s>', `longest a job may run; longer requests are refused up front, by estimate (default ${DEFAULT_LIMITS.maxJobSeconds})`).argParser(positiveNumber('--max-job-seconds')))
    .addOption(new Option('--max-job-memory <size>', `most memory one job may need, e.g. 2G or 512M (default ${DEFAULT_LIMITS.maxJobMemory / 2 ** 30}G)`).argParser(parseSize('--max-job-memory')))
    .addOption(new Option('--gflops <n>', `sustained GFLOP/s the estimates assume (default ${DEFAULT_LIMITS.flopsPerSecond / 1e9}; raise it on a GPU)`).argParser(positiveNumber('--gflops')))
    .addHelpText('after', '\nExample:\n  lantern serve --port 8484\n  lantern serve --host 0.0.0.0 --token "$(openssl rand -hex 16)"')
    .action(async (opts) => {
      if (opts.revision !== undefined && opts.model === undefined) throw new LanternError('--revision needs --model (a Hub id)');
      if (!LOOPBACK.has(opts.host) && !opts.token) throw new LanternError(`--host ${opts.host} is reachable from other machines; give --token <secret> too`);
      if (opts.token !== undefined && String(opts.token).length < 8) throw new LanternError('--token must be at least 8 characters');
      // The default model also answers OpenAI clients under /v1 (with --token as their API key).
      const limits = {
        ...(opts.maxJobSeconds !== undefined ? { maxJobSeconds: opts.maxJobSeconds } : {}),
        ...(opts.maxJobMemory !== undefined ? { maxJobMemory: opts.maxJobMemory } : {}),
        ...(opts.gflops !== undefined ? { flopsPerSecond: opts.gflops * 1e9 } : {}),
      };
      const app = await buildServer({ model: opts.model, revision: opts.revision, token: opts.token, dataDir: opts.dataDir, jobsDir: opts.jobsDir === undefined ? undefined : path.resolve(opts.jobsDir), openai: true, limits });
      let address: string;
      try {
        address = await app.listen({ port: opts.port, host: opts.host });
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        await app.close();
        if (code === 'EADDRINUSE') throw new LanternError(`port ${opts.port} is in use; pick another with --port (0 for any free port)`);
        if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND') throw new LanternError(`cannot listen on ${opts.host}: ${(e as Error).message}`);
        throw e;
      }
      const url = new URL(address.replace('://[::1]', '://localhost').replace('://127.0.0.1', '://localhost'));
      if (opts.token) url.searchParams.set('token', opts.token);
      console.log(`Lantern Workbench: ${url.href}`);
      console.log('API description: ' + new URL('/api/openapi.json', url).href.replace(/\?.*/, ''));
      console.log(`OpenAI-compatible API: ${new URL('/v1', url).href.replace(/\?.*/, '')} (model '${servedId(opts.model ?? defaultModel())}')`);
      const stop = () => {
        void app.close().then(() => process.exit(0));
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
}
