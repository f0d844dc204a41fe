import { Command, Option } from 'commander';
import { LanternError } from '../../errors.js';
import { buildServer } from '../server/app.js';
import { servedId } from '../server/openai-compat.js';
import { defaultModel } from './defaults.js';
import { nonNegativeInt } from './forward.js';

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1']);

export function serveCommand(program: Command): void {
  program
    .command('serve')
    .description('Start the Workbench: the web app and its JSON API (OpenAPI at /api/openapi.json).')
    .option('-m, --model <folder|hub-id>', 'the default model (default: the bundled model)')
    .addOption(new Option('-p, --port <n>', 'port (0: any free port)').default(8484).argParser(nonNegativeInt('--port', 65535)))
    .option('--host <host>', 'address to listen on; anything but loopback needs --token', '127.0.0.1')
    .option('--token <token>', 'a secret every request must carry (Authorization: Bearer, or ?token= in the URL)')
    .option('--data-dir <folder>', 'where saved runs live (default: <LANTERN_HOME>/workbench)')
    .addHelpText('after', '\nExample:\n  lantern serve --port 8484\n  lantern serve --host 0.0.0.0 --token "$(openssl rand -hex 16)"')
    .action(async (opts) => {
      if (!LOOPBACK.has(opts.host) && !opts.token) throw new LanternError(`--host ${opts.host} is reachable from other machines; give --token <secret> too`);
      if (opts.token !== undefined && String(opts.token).length < 8) throw new LanternError('--token must be at least 8 characters');
      // The default model also answers OpenAI clients under /v1 (with --token as their API key).
      const app = await buildServer({ model: opts.model, token: opts.token, dataDir: opts.dataDir, openai: true });
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
