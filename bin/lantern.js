#!/usr/bin/env node
// The CLI runs from the compiled output (npm ci builds it through the `prepare` script).
import { existsSync } from 'node:fs';
const main = new URL('../dist/interfaces/cli/main.js', import.meta.url);
if (!existsSync(main)) {
  console.error('lantern: error: not built yet; run `npm run build` (npm ci does it for you)');
  process.exit(1);
}
await import(main.href);
