// Builds the Workbench web app (web/ -> web/dist) unless the build is newer than every input, so
// `npm start` does not spend half a minute rebuilding an unchanged app on a busy machine.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const built = path.join(root, 'web', 'dist', 'index.html');

function newest(p) {
  const st = fs.statSync(p);
  if (!st.isDirectory()) return st.mtimeMs;
  return Math.max(0, ...fs.readdirSync(p).map((f) => newest(path.join(p, f))));
}

const inputs = ['web/src', 'web/index.html', 'web/vite.config.ts', 'package-lock.json'].map((p) => path.join(root, p));
const stale = !fs.existsSync(built) || fs.statSync(built).mtimeMs < Math.max(...inputs.map(newest));
if (stale || process.argv.includes('--force')) {
  const { build } = await import('vite');
  await build({ configFile: path.join(root, 'web', 'vite.config.ts') });
}
