/**
 * The `--json [file]` and `--html <file>` outputs shared by the analysis commands (trace, lens, patch,
 * circuit), so that they agree on what a bare --json does and on the `saved ... to` lines.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import { LanternError } from '../../errors.js';
import { assertFinite } from '../../finite.js';

/** Fails unless `file` can be created: its folder exists and it is not itself a folder. */
export function assertWritable(file: string, flag: string): void {
  if (file === '') throw new LanternError(`${flag} needs a file name`);
  if (fs.existsSync(file) && fs.statSync(file).isDirectory()) throw new LanternError(`${flag} ${file} is a folder; give a file name`);
  const dir = path.dirname(path.resolve(file));
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) throw new LanternError(`${flag} ${file}: folder ${dir} does not exist`);
}

/** `htmlHelp`: what the HTML page shows, which differs by command. */
export function addOutputOptions(cmd: Command, htmlHelp: string): Command {
  return cmd
    .option('--json [file]', 'write the result as JSON to <file> (or print it when no file is given)')
    .option('--html <file>', htmlHelp);
}

/** `pages`: the flags of the files rendered from the result besides the JSON (html, and svg for circuit). */
export function assertOutputsWritable(opts: Record<string, unknown>, pages: readonly string[] = ['html']): void {
  // Before the model loads, so that a typo in a path costs nothing.
  if (typeof opts.json === 'string') assertWritable(opts.json, '--json');
  for (const flag of pages) if (typeof opts[flag] === 'string') assertWritable(opts[flag] as string, `--${flag}`);
}

/**
 * A bare --json prints the JSON in place of `printText`'s report and of the `saved ... to` lines, so that
 * stdout parses as JSON; the `pages` asked for are written either way.
 */
export function emitOutputs(opts: Record<string, unknown>, saved: unknown, pages: Record<string, () => string>, printText: () => void): void {
  assertFinite(saved, 'the result');
  if (opts.json === true) console.log(JSON.stringify(saved, null, 2));
  else if (typeof opts.json === 'string') fs.writeFileSync(opts.json, JSON.stringify(saved, null, 2) + '\n');
  const written = Object.keys(pages).filter((flag) => opts[flag]);
  for (const flag of written) fs.writeFileSync(String(opts[flag]), pages[flag]());
  if (opts.json === true) return;
  printText();
  if (typeof opts.json === 'string') console.log(`saved JSON to ${opts.json}`);
  for (const flag of written) console.log(`saved ${flag.toUpperCase()} to ${opts[flag]}`);
}
