/**
 * What each compute endpoint does: its request schema (JSON Schema, which Fastify validates and
 * the OpenAPI description shows) and the library call it makes. Results are the library's own
 * result objects, plus token strings, so an API result can be checked against a direct call.
 */
import fs from 'node:fs';
import path from 'node:path';
import { LanternError } from '../../errors.js';
import type { HookedTransformer } from '../../models/hooked.js';
import { topK } from '../../models/predictions.js';
import {
  attribute, mergeWords, resultToJSON, METHODS, SCORE_KINDS,
} from '../../methods/attribution/index.js';
import type { AttributionSettings, Baseline, Masking } from '../../methods/attribution/index.js';
import { ATTRIBUTION, ATTRIBUTION_SETTINGS } from '../../methods/attribution/options.js';
import { checkOptionsApply, optionSchema, requestSchema, withDefaults } from '../../methods/options.js';
import type { MethodFamily } from '../../methods/options.js';
import { LENS } from '../../methods/lens/options.js';
import { PATCHING } from '../../methods/patching/options.js';
import { logitLens, loadTunedLens, tunedLensPath } from '../../methods/lens/index.js';
import { activationPatching, attributionPatching, pearson } from '../../methods/patching/index.js';
import { GENERATORS, builtinDataset, statementPairs } from '../../data/statements.js';
import { PROBE_KINDS, sweepLayers } from '../../methods/representations/probes/index.js';
import type { RunKind } from './api-types.js';
import type { JobContext } from './queue.js';
import { checkWork, estimateRequest, WorkLimits } from './limits.js';
import { chatPrompt } from '../../models/chat.js';
import { tokenLabel, tokenLabels } from './token-labels.js';
import { positionStats } from './positions.js';
import { causalTrace, TraceKind } from '../../methods/patching/causal-tracing.js';
import { TRACING } from '../../methods/patching/options.js';
import { CIRCUITS } from '../../methods/circuits/options.js';
import { acdc, eap, Circuit, IgPath } from '../../methods/circuits/discovery.js';
import { TASK_METRIC, taskExamples, CircuitTask } from '../../methods/circuits/data.js';
import { valueOutputNorms } from '../../methods/heads/value-norms.js';
import { pathPatching, pathPatchingSweep } from '../../methods/circuits/path-patching.js';
import { circuitSvg } from '../../methods/circuits/render.js';

/** Most subjects a probe sweep takes (each gives one or two short prompts). */
export const MAX_PROBE_SUBJECTS = 1000;

/** Prompts longer than this (in characters) are refused before tokenizing. */
export const MAX_TEXT = 4000;
/** Longest prompt for the attention endpoint, whose result grows as layers x heads x tokens². */
export const MAX_ATTENTION_TOKENS = 128;

const text = { type: 'string', minLength: 1, maxLength: MAX_TEXT };
const model = { type: 'string', minLength: 1, maxLength: 300, description: "a reference from GET /api/models: 'bundled', 'planted:<kind>', 'folder:<id>', 'hub:<id>' or 'default' (default: the server's model)" };
const messages = {
  type: 'array', minItems: 1, maxItems: 64,
  description: "a chat, put through the model's chat template instead of giving text (attribution then scores only the user's words)",
  items: {
    type: 'object', additionalProperties: false, required: ['role', 'content'],
    properties: { role: { type: 'string', minLength: 1, maxLength: 50 }, content: { type: 'string', maxLength: MAX_TEXT } },
  },
};
const chatFields = {
  messages,
  addGenerationPrompt: { type: 'boolean', description: "messages: end with the header of the assistant's reply (default true)" },
};
// Either a prompt or a chat.
const textOrMessages = { anyOf: [{ required: ['text'] }, { required: ['messages'] }] };
/** A family's request schema whose prompt may come as chat messages instead of text. */
function withMessages(schema: Record<string, unknown>): Record<string, unknown> {
  return { ...schema, required: (schema.required as string[]).filter((k) => k !== 'text'), ...textOrMessages };
}
const common = {
  model,
  title: { type: 'string', maxLength: 200, description: 'a name for the saved run (default: from the prompt)' },
};
/** The method families with an endpoint, in the order GET /api/methods/settings lists them. */
export const API_FAMILIES: readonly MethodFamily[] = [ATTRIBUTION, LENS, PATCHING, TRACING, CIRCUITS];

export const SCHEMAS: Record<RunKind, Record<string, unknown>> = {
  forward: {
    type: 'object', additionalProperties: false, ...textOrMessages,
    properties: { ...common, text, ...chatFields, topK: { type: 'integer', minimum: 1, maximum: 100, default: 10 } },
  },
  attention: {
    type: 'object', additionalProperties: false, ...textOrMessages,
    properties: { ...common, text: { ...text, maxLength: 1000 }, ...chatFields },
  },
  lens: withMessages(requestSchema(LENS, { ...common, ...chatFields }, MAX_TEXT)),
  attribution: {
    type: 'object', additionalProperties: false, ...textOrMessages,
    properties: {
      ...common, text, ...chatFields,
      templateTokens: { type: 'boolean', description: "messages: attribute the chat template's tokens (and other roles' words) too, not only the user's words" },
      method: { type: 'string', enum: [...METHODS], default: 'ig' },
      target: { type: 'string', minLength: 1, maxLength: 400, description: "one token (next-token target) or several (a teacher-forced continuation); default: the model's top prediction" },
      foil: { type: 'string', minLength: 1, maxLength: 100, description: 'contrastive: explain logit(target) − logit(foil); needs a one-token target' },
      kind: { type: 'string', enum: [...SCORE_KINDS], default: 'logprob' },
      evaluate: { type: 'boolean', default: false, description: 'also measure faithfulness (comprehensiveness, sufficiency, AOPC, Kendall τ)' },
      seed: { type: 'integer', minimum: 0, maximum: 0xffffffff, default: 0 },
      // Every method setting, from the one declaration the CLI is built from too.
      ...Object.fromEntries(ATTRIBUTION_SETTINGS.map((spec) => [spec.key, optionSchema(spec)])),
    },
  },
  // Patching prompts are shorter than others: every patched run repeats the whole prompt.
  patching: requestSchema(PATCHING, {
    ...common,
    chat: { type: 'boolean', description: "put clean and corrupt each through the model's chat template as the user's message" },
    system: { type: 'string', maxLength: MAX_TEXT, description: 'chat: a system message before the user\'s' },
  }, 1000),
  trace: requestSchema(TRACING, common, 1000),
  circuit: requestSchema(CIRCUITS, common),
  probes: {
    type: 'object', additionalProperties: false, required: ['dataset'],
    properties: {
      ...common,
      dataset: { type: 'string', enum: Object.keys(GENERATORS), description: 'a built-in labelled dataset' },
      kind: { type: 'string', enum: [...PROBE_KINDS], default: 'logistic' },
      positions: { type: 'string', enum: ['last', 'mean'], default: 'last' },
      limit: { type: 'integer', minimum: 4, maximum: MAX_PROBE_SUBJECTS, default: 100, description: 'subjects (countries, words, ...) to use' },
      seed: { type: 'integer', minimum: 0, maximum: 0xffffffff, default: 0 },
    },
  },
};

type Body = Record<string, any>;

/**
 * Rules between fields that need no model, checked before a job is queued, so a request that can
 * only fail is a 400 at once rather than a saved failed run.
 */
export function precheck(kind: RunKind, body: Body): void {
  if (body.text !== undefined && body.messages !== undefined) throw new LanternError('give text or messages, not both');
  if (body.messages === undefined && (body.addGenerationPrompt !== undefined || body.templateTokens !== undefined)) throw new LanternError('addGenerationPrompt and templateTokens apply only with messages');
  if (kind === 'patching' && body.system !== undefined && !body.chat) throw new LanternError('system applies only with chat');
  if (kind === 'attribution') {
    const method = body.method ?? 'ig';
    if (body.foil !== undefined && body.target === undefined) throw new LanternError('foil needs a target (the token to contrast the foil with)');
    checkOptionsApply(ATTRIBUTION.options, (k) => (k === 'method' ? method : body[k]), 'api');
  }
  if (kind === 'circuit') {
    checkOptionsApply(CIRCUITS.options, (k) => body[k], 'api');
    if ((body.method ?? 'acdc') === 'path' && body.sender === undefined && body.path === undefined) throw new LanternError('method path needs a sender (a node such as L0H2) or a path (e.g. L0H2,L1H1.k,logits)');
  }
  if (kind === 'patching') {
    checkOptionsApply(PATCHING.options, (k) => body[k], 'api');
    if (body.metric === 'logit-diff' && body.wrong === undefined) throw new LanternError('metric logit-diff needs a wrong answer');
  }
}

/** A short default title for a saved run. */
export function defaultTitle(kind: RunKind, body: Body): string {
  if (kind === 'probes') return `${body.kind ?? 'logistic'} probes on ${body.dataset}`;
  if (kind === 'circuit') return `${body.method ?? 'acdc'} circuit on ${body.task}`;
  const lastUser = (body.messages as { role: string; content: string }[] | undefined)?.filter((msg) => msg.role === 'user').at(-1)?.content;
  const t = String(kind === 'patching' ? body.clean : body.text ?? lastUser ?? body.messages?.at(-1)?.content ?? '').replace(/\s+/g, ' ').trim();
  return t.length > 60 ? `${t.slice(0, 59)}…` : t;
}

function checkLength(m: HookedTransformer, tokens: number[], what: string): void {
  if (tokens.length === 0) throw new LanternError(`${what} is empty after tokenizing`);
  if (tokens.length > m.cfg.nCtx) throw new LanternError(`${what} is ${tokens.length} tokens; the model's context is ${m.cfg.nCtx}`);
}

function tokenOf(m: HookedTransformer, what: string, v: unknown): Baseline | Masking | undefined {
  if (v === undefined || v === 'zero') return v as 'zero' | undefined;
  const o = v as { token?: number; text?: string };
  if (o.token !== undefined) {
    if (o.token >= m.cfg.dVocab) throw new LanternError(`${what}.token ${o.token} is outside the vocabulary [0, ${m.cfg.dVocab})`);
    return { token: o.token };
  }
  const ids = m.toTokens(o.text!);
  if (ids.length !== 1) throw new LanternError(`${what}.text ${JSON.stringify(o.text)} is ${ids.length} tokens; give exactly one token`);
  return { token: ids[0] };
}

/** The prompt's token ids: the text's, or the templated chat's. */
function promptTokens(m: HookedTransformer, body: Body): number[] {
  return body.messages !== undefined ? chatPrompt(m, body.messages, { addGenerationPrompt: body.addGenerationPrompt }).tokens : m.toTokens(body.text);
}

/** A patching prompt, put through the chat template as the user's message when `chat` is set. */
function patchingPrompt(m: HookedTransformer, body: Body, text: string): number[] {
  if (!body.chat) return m.toTokens(text);
  const msgs = [...(body.system !== undefined ? [{ role: 'system', content: body.system }] : []), { role: 'user', content: text }];
  return chatPrompt(m, msgs).tokens;
}

/** The tuned lens saved in the model's own folder (the server reads no file a request names). */
function modelTunedLens(m: HookedTransformer) {
  if (m.hub) throw new LanternError('tuned lenses are read only from local model folders, not from Hub models');
  const file = tunedLensPath(m.source);
  if (!fs.existsSync(file)) throw new LanternError(`model ${path.basename(m.source)} has no tuned lens (no ${path.basename(file)} in its folder); train one with 'lantern tuned-lens train --model <folder>'`);
  return loadTunedLens(file, m);
}

const round = (x: number) => Math.round(x * 1e6) / 1e6;

/**
 * The sequences the job will run through the model (forward passes, counting each row of a batch),
 * from the same estimate the work limits use: progress counts sequences as they are run, so it
 * covers all of a method's work, faithfulness included.
 */
export function expectedSequences(kind: RunKind, m: HookedTransformer, body: Body, tokens: number): number {
  const rows = kind === 'attribution' && body.target !== undefined ? Math.max(1, m.encode(body.target).length) : 1;
  return estimateRequest(m.cfg, { kind, body, tokens, rows }).passes;
}

/**
 * Estimates what the request will cost on `m` and refuses it (WorkLimitError, a 400 naming the
 * limit) when it exceeds the server's limits; bad prompts are reported as `compute` reports them.
 */
export function checkRequestWork(kind: RunKind, m: HookedTransformer, body: Body, limits: WorkLimits): { seconds: number; bytes: number } {
  if (kind === 'probes' || kind === 'circuit') {
    const r = { kind, body, tokens: 16 };
    return checkWork(estimateRequest(m.cfg, r), r, limits);
  }
  const tokens = kind === 'patching' ? patchingPrompt(m, body, body.clean) : promptTokens(m, body);
  checkLength(m, tokens, kind === 'patching' ? 'clean' : 'text');
  const rows = kind === 'attribution' && body.target !== undefined ? Math.max(1, m.encode(body.target).length) : 1;
  const r = { kind, body, tokens: tokens.length, rows };
  return checkWork(estimateRequest(m.cfg, r), r, limits);
}

export async function compute(kind: RunKind, m: HookedTransformer, body: Body, ctx: JobContext): Promise<unknown> {
  if (kind === 'probes') {
    const ds = builtinDataset(body.dataset, { seed: body.seed ?? 0, limit: body.limit ?? 100 });
    const probeKind = body.kind ?? 'logistic';
    const items = probeKind === 'ccs' ? statementPairs(ds.examples) : ds.examples;
    ctx.stage('computing', `probing ${items.length} examples at every layer`);
    return sweepLayers(m, items, { kind: probeKind, seed: body.seed ?? 0, positions: body.positions ?? 'last', dataset: ds.name });
  }
  if (kind === 'circuit') return circuit(m, body, ctx);
  const str = (ids: number[]) => m.tokenStrings(ids);
  const first = kind === 'patching' ? patchingPrompt(m, body, body.clean) : promptTokens(m, body);
  checkLength(m, first, kind === 'patching' ? 'clean' : 'text');
  ctx.stage('computing', `running ${kind}`, expectedSequences(kind, m, body, first.length));
  switch (kind) {
    case 'forward': {
      const logits = await m.run([first]);
      const predictions = topK(logits, first.length - 1, body.topK ?? 10, (id) => str([id])[0]).map((p) => ({ ...p, label: tokenLabel(m, p.id) }));
      // Every position's entropy, loss and top tokens (five: what a click on a token shows).
      const positions = positionStats(logits, first, Math.min(5, body.topK ?? 10)).map((p) => ({ ...p, top: p.top.map((x) => ({ ...x, label: tokenLabel(m, x.id) })) }));
      return { tokens: first, tokenStrings: str(first), tokenLabels: tokenLabels(m, first), predictions, positions };
    }
    case 'attention': {
      // Every layer and head's T x T pattern goes into the response and the saved run.
      if (first.length > MAX_ATTENTION_TOKENS) throw new LanternError(`attention patterns are limited to ${MAX_ATTENTION_TOKENS} tokens (the prompt is ${first.length}); use a shorter prompt`);
      const L = m.cfg.nLayers;
      const names = Array.from({ length: L }, (_, l) => `blocks.${l}.attn.hook_pattern`);
      const valueNames = Array.from({ length: L }, (_, l) => `blocks.${l}.attn.hook_v`);
      const { cache } = await m.runWithCache([first], [...names, ...valueNames]);
      const T = first.length;
      const H = m.cfg.nHeads;
      // patterns[layer][head][query][key], rounded to 1e-6 to keep the JSON small.
      const patterns = names.map((n) => {
        const p = cache.get(n).f32;
        return Array.from({ length: H }, (_, h) => Array.from({ length: T }, (_, q) => Array.from(p.subarray((h * T + q) * T, (h * T + q + 1) * T), round)));
      });
      // valueNorms[layer][head][key]: ‖v_key W_O‖, what the key can write through the head, which
      // with the pattern gives value-weighted attention (Kobayashi et al., 2020).
      const valueNorms: number[][][] = [];
      for (let l = 0; l < L; l++) valueNorms.push((await valueOutputNorms(m, l, cache.get(valueNames[l]))).map((row) => row.map(round)));
      return { tokens: first, tokenStrings: str(first), tokenLabels: tokenLabels(m, first), nLayers: L, nHeads: H, patterns, valueNorms };
    }
    case 'lens': {
      const o = withDefaults(LENS, body);
      const r = await logitLens(m, first, { topK: o.topK, target: o.target, tuned: o.tunedLens ? modelTunedLens(m) : undefined });
      const cells = r.cells.map((row) => row.map((c) => ({ ...c, top: c.top.map((t) => ({ ...t, label: tokenLabel(m, t.id) })) })));
      return { ...r, cells, tokenLabels: tokenLabels(m, r.tokens), ...(body.messages ? { messages: body.messages } : { text: body.text }) };
    }
    case 'attribution': {
      if (body.foil !== undefined && body.target === undefined) throw new LanternError('foil needs a target (the token to contrast the foil with)');
      let target: string | undefined;
      let continuation: string | undefined;
      if (body.target !== undefined) {
        const n = m.encode(body.target).length;
        if (n === 0) throw new LanternError('target is empty after tokenizing');
        if (n > 1 && body.foil !== undefined) throw new LanternError(`target ${JSON.stringify(body.target)} is ${n} tokens; a contrastive foil needs a one-token target`);
        if (n > 1) continuation = body.target;
        else target = body.target;
      }
      const settings: Record<string, unknown> = {};
      for (const spec of ATTRIBUTION_SETTINGS) {
        if (body[spec.key] !== undefined) settings[spec.key] = spec.type.kind === 'token' ? tokenOf(m, spec.key, body[spec.key]) : body[spec.key];
      }
      const r = await attribute(m, {
        ...(body.messages !== undefined
          ? { messages: body.messages, chat: { addGenerationPrompt: body.addGenerationPrompt }, templateTokens: !!body.templateTokens }
          : { text: body.text }),
        target, foil: body.foil, continuation, kind: body.kind, method: body.method ?? 'ig', settings: settings as AttributionSettings, seed: body.seed ?? 0, evaluate: !!body.evaluate,
      });
      return { ...resultToJSON(r), tokenLabels: tokenLabels(m, r.tokens), words: mergeWords(r.tokenStrings, r.scores) };
    }
    case 'trace': {
      const o = withDefaults(TRACING, body);
      const r = await causalTrace(m, { prompt: body.text, subject: o.subject, answer: o.answer, noise: o.noise, samples: o.samples, seed: o.seed, window: o.window, kinds: [...o.kinds] as TraceKind[] });
      return { ...r, text: body.text, subject: body.subject, tokenStrings: str(r.tokens), tokenLabels: tokenLabels(m, r.tokens) };
    }
    case 'patching': {
      const corrupt = patchingPrompt(m, body, body.corrupt);
      checkLength(m, corrupt, 'corrupt');
      const o = withDefaults(PATCHING, body);
      const opts = {
        clean: first, corrupt, answer: o.answer, wrong: o.wrong, metric: o.metric, sweep: o.sweep, byPosition: Boolean(o.byPosition), pos: o.pos,
      };
      const act = o.method === 'attribution' ? undefined : await activationPatching(m, { ...opts, batchSize: o.batchSize });
      const attr = o.method === 'activation' ? undefined : await attributionPatching(m, { ...opts, igSteps: o.igSteps });
      const r = (act ?? attr)!;
      const strings = { cleanTokenStrings: str(r.cleanTokens), corruptTokenStrings: str(r.corruptTokens), corruptTokenLabels: tokenLabels(m, r.corruptTokens) };
      if (!act || !attr) return { ...r, ...strings };
      // Both: the activation result, with the attribution grid and their correlation beside it
      // (null when a grid is constant: a correlation of nothing is no number).
      const corr = pearson(act.effects, attr.effects);
      return { ...act, ...strings, attribution: { method: attr.method, effects: attr.effects, settings: attr.settings }, pearson: Number.isFinite(corr) ? corr : null };
    }
  }
}

/** Circuit discovery (ACDC, EAP) or path patching on a task's clean/corrupted examples, as `lantern circuit` runs it. */
async function circuit(m: HookedTransformer, body: Body, ctx: JobContext): Promise<unknown> {
  const o = withDefaults(CIRCUITS, body);
  const task = o.task as CircuitTask;
  const examples = taskExamples(m, task, o.n, o.seed);
  const metric = TASK_METRIC[task];
  const settings = { task, n: o.n, seed: o.seed, metric };
  ctx.stage('computing', `running ${o.method} on ${task}`);
  if (o.method === 'path') {
    const r = o.path
      ? await pathPatching(m, [String(o.path).split(',').map((x: string) => x.trim())], { examples, metric, progress: ctx.advance })
      : await pathPatchingSweep(m, o.sender, { examples, metric, progress: ctx.advance });
    return { ...r, kind: 'path', settings: { ...settings, ...r.settings, ...(o.path ? { path: o.path } : { sender: o.sender }) } };
  }
  const c: Circuit = o.method === 'acdc'
    ? await acdc(m, { examples, metric, threshold: o.threshold, progress: ctx.advance })
    : await eap(m, { examples, metric, threshold: o.threshold, igSteps: o.igSteps, igPath: o.igPath as IgPath, progress: ctx.advance });
  // The graph as `lantern circuit --svg` draws it: one <line> per edge, in the order of `edges`.
  return { ...c, kind: 'graph', nLayers: m.cfg.nLayers, nHeads: m.cfg.nHeads, svg: circuitSvg(c, m.cfg.nLayers, m.cfg.nHeads), settings: { ...settings, ...c.settings, method: o.method } };
}
