// The README and the guides as a user reads them: every shell command and TypeScript snippet runs,
// and every link between the docs leads somewhere. A renamed flag or export fails here, not for
// the user. Blocks a test cannot run (installs, servers that run until stopped, downloads) carry an
// `<!-- illustrative: reason -->` comment right before them; the reason is required, and their
// `lantern` commands are checked against each command's --help.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { ROOT } from './helpers.js';

const DOCS = path.join(ROOT, 'docs');
/** Generated (docs/api) or background notes whose snippets are excerpts (docs/design): links only. */
const NOT_RUN = [path.join(DOCS, 'api'), path.join(DOCS, 'design')];
const CLI_MAIN = path.join(ROOT, 'src', 'interfaces', 'cli', 'main.ts');
const TSX = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
const SNIPPETS = path.join(ROOT, 'test-artifacts', 'docs-snippets');
const MARKER = /^<!--\s*illustrative(?::\s*(.*?))?\s*-->$/;
/** Commands that install, run the whole suite, or start a server: never run from here. */
const NEVER_RUN = /\b(npm (ci|install|start|test|run (bench|train:demo|fuzz|docs))|lantern serve)\b/;

interface Block { file: string; line: number; lang: string; code: string; illustrative: string | null }

function markdownFiles(dir: string): string[] {
  if (dir === path.join(DOCS, 'api')) return [];
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? markdownFiles(p) : e.name.endsWith('.md') ? [p] : [];
  });
}

const FILES = [path.join(ROOT, 'README.md'), ...markdownFiles(DOCS)];
const rel = (f: string) => path.relative(ROOT, f);

function codeBlocks(file: string): Block[] {
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\w*)\s*$/.exec(lines[i]);
    if (!open) continue;
    let end = i + 1;
    while (end < lines.length && lines[end] !== '```') end++;
    let prev = i - 1;
    while (prev >= 0 && lines[prev].trim() === '') prev--;
    const marker = prev >= 0 ? MARKER.exec(lines[prev].trim()) : null;
    blocks.push({ file, line: i + 1, lang: open[1], code: lines.slice(i + 1, end).join('\n'), illustrative: marker ? (marker[1] ?? '') : null });
    i = end;
  }
  return blocks;
}

const runnable = (f: string) => !NOT_RUN.some((d) => f.startsWith(d + path.sep));
const isShell = (b: Block) => b.lang === 'sh' || b.lang === 'bash';
const isTs = (b: Block) => b.lang === 'ts' || b.lang === 'typescript';

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens, repeats numbered. */
function anchors(file: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  let fenced = false;
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    if (line.startsWith('```')) fenced = !fenced;
    const h = !fenced && /^#{1,6}\s+(.*)$/.exec(line);
    if (!h) continue;
    const base = h[1].trim().toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n ? `${base}-${n}` : base);
  }
  return out;
}

describe('docs: markers and links', () => {
  it('every illustrative marker gives a reason and stands right before a code block', () => {
    for (const file of FILES) {
      const lines = fs.readFileSync(file, 'utf8').split('\n');
      lines.forEach((line, i) => {
        const m = MARKER.exec(line.trim());
        if (!m && !/<!--\s*illustrative/.test(line)) return;
        const where = `${rel(file)}:${i + 1}`;
        expect(m, `${where}: write the marker as <!-- illustrative: reason -->`).not.toBeNull();
        expect((m![1] ?? '').length, `${where}: an illustrative marker needs a reason`).toBeGreaterThan(10);
        let next = i + 1;
        while (next < lines.length && lines[next].trim() === '') next++;
        expect(lines[next] ?? '', `${where}: the marker must precede a code block`).toMatch(/^```\w+/);
      });
    }
  });

  it('commands that install, start servers or run the suite are marked illustrative', () => {
    for (const b of FILES.flatMap(codeBlocks)) {
      if (isShell(b) && b.illustrative === null) {
        expect(b.code, `${rel(b.file)}:${b.line} runs a command the docs test cannot (mark it illustrative)`).not.toMatch(NEVER_RUN);
      }
    }
  });

  it("illustrative blocks' lantern commands use flags their command has", async () => {
    // Illustrative blocks are not run, but a renamed command or flag in them must still fail here.
    const uses = new Map<string, Set<string>>();
    for (const b of FILES.flatMap(codeBlocks).filter((x) => x.illustrative !== null && isShell(x))) {
      for (const line of commands(b.code)) {
        const m = /(?:^|\s)(?:npx )?lantern ((?:[a-z][a-z-]* )*)(.*)$/.exec(line.replace(/"[^"]*"|'[^']*'/g, 'X'));
        if (!m) continue;
        const words = m[1].trim().split(' ').filter(Boolean);
        const command = words.join(' ');
        const flags = uses.get(command) ?? new Set<string>();
        for (const f of m[2].matchAll(/(?:^|\s)(--[a-z][a-z0-9-]*)/g)) flags.add(f[1]);
        uses.set(command, flags);
      }
    }
    for (const [command, flags] of uses) {
      const help = await cli([...command.split(' '), '--help']);
      expect(help.code, `lantern ${command} --help: ${help.out}`).toBe(0);
      for (const f of flags) expect(help.out, `lantern ${command} has no ${f}`).toMatch(new RegExp(`${f}\\b`));
    }
  }, 120_000);

  it('every code block says its language, and runnable ones are sh, bash, ts or text', () => {
    for (const b of FILES.flatMap(codeBlocks)) {
      expect(b.lang, `${rel(b.file)}:${b.line}: a code block without a language`).not.toBe('');
      expect(['sh', 'bash', 'ts', 'typescript', 'text', 'json'], `${rel(b.file)}:${b.line}: language '${b.lang}'`).toContain(b.lang);
    }
  });

  it('relative links and #anchors between the docs resolve', () => {
    const problems: string[] = [];
    for (const file of FILES) {
      const text = fs.readFileSync(file, 'utf8').replace(/```[\s\S]*?```/g, '').replace(/`[^`\n]*`/g, '');
      for (const m of text.matchAll(/!?\[[^\]]*\]\(([^)\s]+)\)/g)) {
        const target = m[1];
        if (/^(https?:|mailto:)/.test(target)) continue;
        const [p, anchor] = target.split('#');
        const dest = p ? path.resolve(path.dirname(file), decodeURIComponent(p)) : file;
        if (!fs.existsSync(dest)) { problems.push(`${rel(file)}: ${target}: no such file`); continue; }
        if (anchor !== undefined && !anchors(dest).has(anchor)) problems.push(`${rel(file)}: ${target}: no heading '#${anchor}' in ${rel(dest)}`);
      }
    }
    expect(problems).toEqual([]);
  });
});

// One working folder for every document, in order: a guide may make a model in one block and use
// it in the next, and a command already run from the same folder (the README's tour repeats the
// guides' first steps) is not run again.
let work = '';
const ran = new Set<string>();
beforeAll(() => { work = fs.mkdtempSync(path.join(os.tmpdir(), 'lantern-docs-')); });
afterAll(() => { process.chdir(ROOT); fs.rmSync(work, { recursive: true, force: true }); });

for (const file of FILES.filter(runnable)) {
  const blocks = codeBlocks(file).filter((b) => b.illustrative === null && (isShell(b) || isTs(b)));
  if (!blocks.length) continue;
  describe(rel(file), () => {
    for (const b of blocks) {
      it(`${b.lang} block at line ${b.line}`, async () => {
        if (isShell(b)) await runShell(b, work);
        else await runTs(b, work);
      }, 300_000);
    }
  });
}

/** A shell block's commands, one per line (backslash continuations joined, whitespace normalised). */
function commands(code: string): string[] {
  return code.replace(/\\\n\s*/g, ' ').split('\n').map((l) => l.trim().replace(/\s+/g, ' ')).filter((l) => l && !l.startsWith('#'));
}

/** What makes two commands the same: their text without a trailing comment. */
const commandKey = (c: string) => c.replace(/\s+#[^"'`]*$/, '');

/** Runs a shell block with `lantern` (and `npx lantern`) meaning this checkout's CLI, offline. */
async function runShell(b: Block, work: string): Promise<void> {
  const prelude = [
    'set -euo pipefail',
    `lantern() { node --import '${TSX}' '${CLI_MAIN}' "$@"; }`,
    'npx() { if [ "$1" = lantern ]; then shift; lantern "$@"; else command npx "$@"; fi; }',
  ].join('\n');
  const lines = commands(b.code);
  const fresh = lines.filter((c) => !ran.has(commandKey(c)));
  if (!fresh.length) return;
  const child = spawn('bash', ['-c', `${prelude}\n${lines.map((c) => (ran.has(commandKey(c)) ? ': already run' : c)).join('\n')}`], {
    cwd: work,
    env: {
      ...process.env,
      LANTERN_HOME: path.join(work, 'lantern-home'),
      HF_HOME: path.join(work, 'hf-home'),
      HF_HUB_OFFLINE: '1',
      HF_ENDPOINT: 'http://127.0.0.1:9',
      FORCE_COLOR: '0',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const code = await new Promise<number | null>((resolve, reject) => { child.on('error', reject); child.on('close', resolve); });
  expect(code, `${rel(b.file)}:${b.line} failed:\n${b.code}\n--- output\n${out}`).toBe(0);
  for (const c of fresh) ran.add(commandKey(c));
}

/** Runs the CLI from source (no model work: used for --help). */
async function cli(args: string[]): Promise<{ code: number | null; out: string }> {
  const child = spawn(process.execPath, ['--import', TSX, CLI_MAIN, ...args], { cwd: ROOT, env: { ...process.env, FORCE_COLOR: '0' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const code = await new Promise<number | null>((resolve, reject) => { child.on('error', reject); child.on('close', resolve); });
  return { code, out };
}

/** Runs a TypeScript block in this process, with `'lantern'` meaning the package's source, from the shared working folder. */
async function runTs(b: Block, work: string): Promise<void> {
  fs.mkdirSync(SNIPPETS, { recursive: true });
  const name = `${rel(b.file).replace(/[/.]/g, '_')}_${b.line}.ts`;
  const file = path.join(SNIPPETS, name);
  const index = path.relative(SNIPPETS, path.join(ROOT, 'src', 'index.js')).split(path.sep).join('/');
  const code = b.code.replace(/from\s+'lantern'/g, `from '${index}'`);
  expect(code, `${rel(b.file)}:${b.line}: a TypeScript snippet imports from 'lantern'`).toMatch(/from '\.\.\//);
  fs.writeFileSync(file, `${code}\nexport {};\n`);
  process.chdir(work);
  try {
    await import(pathToFileURL(file).href);
  } catch (e) {
    throw new Error(`${rel(b.file)}:${b.line} failed: ${(e as Error).stack ?? e}`);
  } finally {
    process.chdir(ROOT);
  }
}
