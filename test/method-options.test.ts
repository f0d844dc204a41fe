// Method options are declared once per family (src/methods/<family>/options.ts). The CLI commands
// and the Workbench API's request schemas are built from those declarations, so: the CLI's --help
// lists exactly the declared flags (plus the interface's own), the API schema has exactly the
// declared keys (plus model and title), and at each end of every declared range a value is
// accepted by both, while a value just outside it is refused by both with an error naming the option.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildServer, LanternServer } from '../src/interfaces/server/app.js';
import { SCHEMAS } from '../src/interfaces/server/compute.js';
import { patchCommand } from '../src/interfaces/cli/patch.js';
import { lensCommand } from '../src/interfaces/cli/lens.js';
import { traceCommand } from '../src/interfaces/cli/trace.js';
import { circuitCommand } from '../src/interfaces/cli/circuit.js';
import { attributeCommand } from '../src/interfaces/cli/attribute.js';
import { apiOptions, checkOptionsApply, cliOptions, MethodFamily, OptionSpec } from '../src/methods/options.js';
import { PATCHING, TRACING } from '../src/methods/patching/options.js';
import { LENS } from '../src/methods/lens/options.js';
import { CIRCUITS } from '../src/methods/circuits/options.js';
import { ATTRIBUTION, ATTRIBUTION_SETTINGS } from '../src/methods/attribution/options.js';
import { activationPatching, attributionPatching, pearson } from '../src/methods/patching/index.js';
import { loadModel } from '../src/models/load.js';
import { BUNDLED_MODEL } from '../src/paths.js';

interface Case {
  family: MethodFamily;
  register: (p: Command) => void;
  /** Flags the CLI command has besides the declared ones. */
  cliOwn: string[];
  /** The API endpoint (a run kind), where the family has one. */
  kind?: 'patching' | 'lens';
  /** Request keys the endpoint has besides the declared ones, model and title (the chat's). */
  apiOwn?: string[];
  /** Valid values for the required options. */
  required: Record<string, string>;
}

const CASES: Case[] = [
  { family: PATCHING, register: patchCommand, cliOwn: ['--model', '--revision', '--chat', '--system', '--chat-template', '--json', '--html', '--help'], kind: 'patching', apiOwn: ['chat', 'system'], required: { clean: 'When Mary and John', corrupt: 'When John and Mary', answer: ' Mary' } },
  { family: LENS, register: lensCommand, cliOwn: ['--model', '--revision', '--chat', '--system', '--chat-template', '--json', '--html', '--help'], kind: 'lens', apiOwn: ['messages', 'addGenerationPrompt'], required: { text: 'The cat sat' } },
  { family: TRACING, register: traceCommand, cliOwn: ['--model', '--revision', '--chat', '--system', '--chat-template', '--json', '--html', '--help'], required: { text: 'The Eiffel Tower is in', subject: 'The Eiffel Tower', answer: ' Paris' } },
  { family: CIRCUITS, register: circuitCommand, cliOwn: ['--model', '--revision', '--json', '--html', '--svg', '--help'], required: { task: 'ioi' } },
];

/** A fresh program with just this command, whose action does nothing: only the parsing is tested. */
function cli(c: Case): { program: Command; cmd: Command } {
  const program = new Command('lantern').exitOverride().configureOutput({ writeErr: () => {}, writeOut: () => {} });
  c.register(program);
  const cmd = program.commands[0];
  cmd.exitOverride().action(() => {});
  return { program, cmd };
}

async function cliParse(c: Case, spec: OptionSpec, value: string): Promise<unknown> {
  const { program, cmd } = cli(c);
  const args = Object.entries(c.required).filter(([k]) => k !== spec.key).flatMap(([k, v]) => [c.family.options.find((o) => o.key === k)!.flag, v]);
  await program.parseAsync(['node', 'lantern', c.family.command, ...args, spec.flag, value]);
  return cmd.opts()[spec.key];
}

/** The long flags a --help text lists. */
function helpFlags(help: string): string[] {
  return help.split('\n').map((l) => /^ {2}(?:-\w, )?(--[\w-]+)/.exec(l)?.[1]).filter((f): f is string => f !== undefined).sort();
}

/** In-range values at each end of a numeric range, and values just outside it. */
function edges(spec: OptionSpec): { inside: number[]; outside: number[] } {
  const t = spec.type;
  if (t.kind === 'integer') return { inside: [t.min, ...(t.max !== undefined ? [t.max] : [])], outside: [t.min - 1, ...(t.max !== undefined ? [t.max + 1] : [])] };
  if (t.kind === 'number') {
    const low = t.exclusiveMin !== undefined ? { inside: t.exclusiveMin + 1e-6, outside: t.exclusiveMin } : { inside: t.min!, outside: t.min! - 1e-6 };
    return { inside: [low.inside, ...(t.max !== undefined ? [t.max] : [])], outside: [low.outside, ...(t.max !== undefined ? [t.max + 1e-6] : [])] };
  }
  return { inside: [], outside: [] };
}

let tmp: string;
let app: LanternServer;
beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lantern-method-options-'));
  app = await buildServer({ dataDir: path.join(tmp, 'data'), allowHub: false });
});
afterAll(async () => {
  await app?.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

/**
 * The API's answer to a request with `key: value`. The model named does not exist, so a request
 * whose options pass the schema fails on the model instead (before any job is queued).
 */
async function apiPost(c: Case, key: string, value: unknown, model = 'planted:none'): Promise<{ status: number; error: string }> {
  const body = { ...c.required, model, [key]: value };
  const res = await app.inject({ method: 'POST', url: `/api/${c.kind}`, payload: body });
  return { status: res.statusCode, error: res.json().error };
}

describe.each(CASES)('$family.name: one declaration of the options', (c) => {
  it('--help lists exactly the declared flags, and the API schema has exactly the declared keys', () => {
    const { cmd } = cli(c);
    expect(helpFlags(cmd.helpInformation())).toEqual([...cliOptions(c.family).map((o) => o.flag), ...c.cliOwn].sort());
    if (!c.kind) return;
    const schema = SCHEMAS[c.kind] as { properties: Record<string, unknown>; required: string[] };
    expect(Object.keys(schema.properties).sort()).toEqual([...apiOptions(c.family).map((o) => o.key), 'model', 'title', ...(c.apiOwn ?? [])].sort());
    // Where messages may replace the text, the text is required only as one of the two (anyOf).
    const eitherOr = c.apiOwn?.includes('messages') ? ['text'] : [];
    expect([...schema.required].sort()).toEqual(c.family.options.filter((o) => o.required && !eitherOr.includes(o.key)).map((o) => o.key).sort());
  });

  const numeric = c.family.options.filter((o) => o.type.kind === 'integer' || o.type.kind === 'number');
  it.each(numeric.map((o) => [o.key, o] as const))('%s: the ends of its range are accepted, and values just outside refused naming it, by the CLI and the API alike', async (_key, spec) => {
    const { inside, outside } = edges(spec);
    for (const v of inside) {
      expect(await cliParse(c, spec, String(v))).toBe(v);
      if (c.kind && spec.only !== 'cli') {
        const r = await apiPost(c, spec.key, v);
        expect(r.error, `${spec.key} = ${v}`).toMatch(/unknown planted model 'none'/);
      }
    }
    for (const v of outside) {
      await expect(cliParse(c, spec, String(v)), `${spec.flag} ${v}`).rejects.toThrow(new RegExp(`^${spec.flag} must be .*, got '${v}'$`));
      if (c.kind && spec.only !== 'cli') {
        const r = await apiPost(c, spec.key, v);
        expect(r.status).toBe(400);
        expect(r.error, `${spec.key} = ${v}`).toMatch(new RegExp(`^${spec.key} must be (at least|at most|above) `));
      }
    }
  });

  const enums = c.family.options.filter((o) => o.type.kind === 'enum');
  it.each(enums.map((o) => [o.key, o] as const))('%s: every choice is accepted, and another value refused naming it, by the CLI and the API alike', async (_key, spec) => {
    const choices = (spec.type as { choices: readonly string[] }).choices;
    for (const v of choices) {
      expect(await cliParse(c, spec, v)).toBe(v);
      if (c.kind) expect((await apiPost(c, spec.key, v)).error).toMatch(/unknown planted model 'none'/);
    }
    await expect(cliParse(c, spec, 'nonesuch')).rejects.toThrow(new RegExp(`^${spec.flag} must be one of ${choices.join(', ')}`));
    if (c.kind) expect((await apiPost(c, spec.key, 'nonesuch')).error).toBe(`${spec.key} must be one of: ${choices.join(', ')}`);
  });
});

describe('options that apply only sometimes', () => {
  it('are refused, naming the option and where it applies, by the CLI and the API alike', async () => {
    const given = (o: Record<string, unknown>) => (k: string) => o[k];
    // The CLI's wording (flags) and the API's (keys), from the same check.
    expect(() => checkOptionsApply(PATCHING.options, given({ method: 'attribution', batchSize: 8 }), 'cli')).toThrow('--batch-size applies only to --method activation or both');
    expect(() => checkOptionsApply(PATCHING.options, given({ batchSize: 8, method: 'both', igSteps: 4 }), 'cli')).not.toThrow();
    // A left-out `method` is its default (activation), which reads no IG steps.
    expect(() => checkOptionsApply(PATCHING.options, given({ igSteps: 4 }), 'cli')).toThrow('--ig-steps applies only to --method attribution or both');
    expect(() => checkOptionsApply(CIRCUITS.options, given({ method: 'path', threshold: 0.2 }), 'cli')).toThrow('--threshold applies only to --method acdc or eap');
    // (The bundled model: the check comes once the model is known, before it loads.)
    const api = await apiPost(CASES[0], 'igSteps', 4, 'bundled');
    expect(api.status).toBe(400);
    expect(api.error).toBe('igSteps applies only to method attribution, both (the method is activation)');
    // Attribution's settings go through the same check; with evaluate, faithfulness reads batchSize whatever the method.
    expect(() => checkOptionsApply(ATTRIBUTION.options, given({ method: 'attention', batchSize: 4 }), 'api')).toThrow('batchSize applies only to method');
    expect(() => checkOptionsApply(ATTRIBUTION.options, given({ method: 'attention', batchSize: 4, evaluate: true }), 'api')).not.toThrow();
  });

  it("the attribution command's --help and the API schema carry every attribution setting", () => {
    const program = new Command('lantern');
    attributeCommand(program);
    const flags = helpFlags(program.commands[0].helpInformation());
    const props = (SCHEMAS.attribution as { properties: Record<string, unknown> }).properties;
    for (const spec of ATTRIBUTION_SETTINGS) {
      expect(flags).toContain(spec.flag);
      expect(props[spec.key], spec.key).toBeDefined();
    }
  });

  it('GET /api/methods/settings describes each family with an endpoint from its declaration (tracing and circuits included); the old attribution route still answers', async () => {
    const res = (await app.inject({ method: 'GET', url: '/api/methods/settings' })).json();
    expect(Object.keys(res.families)).toEqual(['attribution', 'lens', 'patching', 'tracing', 'circuits']);
    expect(res.families.patching.options.map((o: { key: string }) => o.key)).toEqual(PATCHING.options.map((o) => o.key));
    expect(res.families.lens.options.map((o: { key: string }) => o.key)).toEqual(['text', 'target', 'topK', 'tunedLens']);
    const batch = res.families.patching.options.find((o: { key: string }) => o.key === 'batchSize');
    expect(batch).toEqual({ key: 'batchSize', type: { kind: 'integer', min: 1, max: 256 }, default: 64, required: false, appliesTo: { key: 'method', values: ['activation', 'both'] }, help: 'patched runs per model call' });
    const old = (await app.inject({ method: 'GET', url: '/api/attribution/settings' })).json();
    expect(old.settings.find((s: { key: string }) => s.key === 'mask')).toMatchObject({ methods: ['occlusion', 'lime', 'shap', 'shapley'], alsoForEval: true });
  });
});

describe('patching options the API lacked before', () => {
  it('method both with IG steps: the activation grid, the integrated attribution grid and their Pearson r, each as the library gives it', async () => {
    const lib = await loadModel(BUNDLED_MODEL);
    const opts = { clean: 'When Mary and John went to the store, John gave a drink to', corrupt: 'When Mary and John went to the store, Mary gave a drink to', answer: ' Mary', wrong: ' John', sweep: 'resid' as const };
    const res = await app.inject({ method: 'POST', url: '/api/patching', payload: { ...opts, method: 'both', igSteps: 3, batchSize: 16 } });
    expect(res.statusCode, res.body).toBe(200);
    const r = res.json().result;
    const act = await activationPatching(lib, { ...opts, batchSize: 16 });
    const attr = await attributionPatching(lib, { ...opts, igSteps: 3 });
    expect(r.effects.length).toBe(act.effects.length);
    r.effects.forEach((e: number, i: number) => expect(e).toBeCloseTo(act.effects[i], 4));
    r.attribution.effects.forEach((e: number, i: number) => expect(e).toBeCloseTo(attr.effects[i], 4));
    expect(r.attribution.settings.igSteps).toBe(3);
    expect(r.pearson).toBeCloseTo(pearson(act.effects, attr.effects), 6);
  }, 120_000);
});
