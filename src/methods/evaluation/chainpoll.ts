/**
 * ChainPoll (Friel & Sanyal 2023): ask a judge several times, each time reasoning step by step,
 * whether a completion contains hallucinations — claims not supported by the prompt (or by a
 * reference, when given) or false. The score is the fraction of readable polls that say yes; every
 * poll's reasoning is kept. Polls differ by their sampling seed (temperature > 0), so a judge that
 * is unsure spreads its answers and the score says so.
 */
import type { LanguageModelBackend } from '../../backends/types.js';
import { LanternError } from '../../errors.js';
import type { JudgedRecord } from './judge.js';
import { JudgeRunner, type RunnerOptions, type RunUsage } from './runner.js';
import type { EvalStore } from './store.js';

/** A completion to check, with the prompt it answers and optionally a reference. */
export interface ChainPollItem {
  id: string;
  prompt?: string;
  completion: string;
  reference?: string;
}

/** Settings of a ChainPoll run. */
export interface ChainPollOptions extends RunnerOptions {
  /** Polls per item (default 5). */
  polls?: number;
  /** Default 0.7: polls must be able to differ. */
  temperature?: number;
  /** Most tokens per poll (default 400). */
  maxTokens?: number;
  /** Poll p uses seed + p (default 0). */
  seed?: number;
  /** Stored-run id; an earlier run's id resumes it. */
  runId?: string;
}

/** One poll: the judge's reasoning and its yes/no. */
export interface Poll {
  hallucination: boolean | null;
  reasoning: string | null;
  error: string | null;
}

/** ChainPoll's verdict on one item. */
export interface ChainPollResult {
  id: string;
  /** Fraction of readable polls that found a hallucination (null when none was readable). */
  score: number | null;
  polls: Poll[];
}

/** The result of a ChainPoll run. */
export interface ChainPollReport {
  method: 'chainpoll';
  judge: string;
  runId: string;
  settings: Record<string, unknown>;
  items: ChainPollResult[];
  /** Mean score over items with one. */
  meanScore: number | null;
  errors: number;
  usage: RunUsage;
}

/** The ChainPoll prompt for one item. */
export function chainPollPrompt(item: ChainPollItem): string {
  const context = [
    item.prompt !== undefined ? `[Prompt]\n${item.prompt}\n\n` : '',
    item.reference !== undefined ? `[Reference]\n${item.reference}\n\n` : '',
  ].join('');
  const basis = item.reference !== undefined ? 'the reference' : item.prompt !== undefined ? 'the prompt and well-established facts' : 'well-established facts';
  return `Does the following completion contain hallucinations: claims that are false, or not supported by ${basis}?

${context}[Completion]
${item.completion}

Think step by step: go through the completion's claims one by one and check each. Then answer on its own line with [[YES]] if it contains any hallucination, or [[NO]] if it does not.`;
}

/** Reads [[YES]]/[[NO]] (or a last "Answer: yes/no") from a poll's answer. */
export function parseYesNo(text: string): { ok: true; value: boolean; reasoning: string } | { ok: false; error: string } {
  const marks = [...text.matchAll(/\[\[\s*(yes|no)\s*\]\]/gi)];
  let hit = marks;
  if (!marks.length) hit = [...text.matchAll(/answer\s*[:=]\s*\**\s*(yes|no)\b/gi)];
  if (!hit.length) return { ok: false, error: `no answer found (expected [[YES]] or [[NO]]): ${JSON.stringify(text.slice(0, 120))}` };
  const values = new Set(hit.map((m) => m[1].toLowerCase()));
  if (values.size > 1) return { ok: false, error: 'ambiguous answer: both yes and no' };
  const last = hit[hit.length - 1];
  return { ok: true, value: last[1].toLowerCase() === 'yes', reasoning: text.slice(0, last.index).trim() };
}

/**
 * What every poll of a run shares, resolved from {@link ChainPollOptions} (defaults filled in):
 * with the items, all a shard of a chainpoll job needs, so it is saved in the job. It is also the
 * settings a report and its stored run carry.
 */
export interface ChainPollPlan {
  polls: number;
  temperature: number;
  maxTokens: number;
  seed: number;
}

/** A poll and the row the evaluation store keeps for it (written when the run is finished). */
export type PolledRecord = JudgedRecord<Poll>;

/** What finishing a run needs besides the polls. */
export interface ChainPollFinishOptions {
  /** The stored run's id (default: a new one). */
  runId?: string;
  usage: RunUsage;
}

/** Checks the items and the settings of a ChainPoll run. */
export function planChainPoll(items: ChainPollItem[], opts: ChainPollOptions = {}): ChainPollPlan {
  if (!items.length) throw new LanternError('no completions to check');
  const polls = opts.polls ?? 5;
  if (!Number.isInteger(polls) || polls < 1) throw new LanternError(`polls must be an integer ≥ 1, got ${polls}`);
  const temperature = opts.temperature ?? 0.7;
  if (!(temperature >= 0)) throw new LanternError(`temperature must be ≥ 0, got ${temperature}`);
  const ids = new Set<string>();
  for (const it of items) {
    if (typeof it.completion !== 'string') throw new LanternError(`item '${it.id}' has no completion text`);
    if (ids.has(it.id)) throw new LanternError(`item id '${it.id}' appears twice`);
    ids.add(it.id);
  }
  return { polls, temperature, maxTokens: opts.maxTokens ?? 400, seed: opts.seed ?? 0 };
}

/** Polls the judge on `items` (every poll of each, in order); a failed or unreadable poll is a record with an error. */
export async function pollItems(runner: JudgeRunner, plan: ChainPollPlan, items: ChainPollItem[]): Promise<PolledRecord[]> {
  const tasks = items.flatMap((item) => Array.from({ length: plan.polls }, (_, p) => ({ item, p })));
  return Promise.all(tasks.map(async ({ item, p }): Promise<PolledRecord> => {
    const prompt = chainPollPrompt(item);
    const reply = await runner.ask(prompt, { maxTokens: plan.maxTokens, temperature: plan.temperature, seed: plan.seed + p });
    let poll: Poll;
    if (!reply.ok) poll = { hallucination: null, reasoning: null, error: reply.error };
    else {
      const r = parseYesNo(reply.text);
      poll = r.ok ? { hallucination: r.value, reasoning: r.reasoning, error: null } : { hallucination: null, reasoning: null, error: `unreadable answer: ${r.error}` };
    }
    return {
      judgment: poll,
      verdict: {
        item: item.id, variant: `poll${p}`, prompt, raw: reply.ok ? reply.text : null, parsed: poll.hallucination, rationale: poll.reasoning, error: poll.error,
        meta: { kind: 'chainpoll', completion: item.completion },
      },
    };
  }));
}

/**
 * The scores from every poll of `items` (in item order, `plan.polls` per item) and their mean.
 * Stores the run, its polls and its summary in `store`.
 */
export function finishChainPoll(store: EvalStore, judge: string, plan: ChainPollPlan, items: ChainPollItem[], records: PolledRecord[], o: ChainPollFinishOptions): ChainPollReport {
  if (records.length !== items.length * plan.polls) throw new LanternError(`${records.length} polls for ${items.length} items × ${plan.polls} polls`);
  const settings = { polls: plan.polls, temperature: plan.temperature, maxTokens: plan.maxTokens, seed: plan.seed };
  const runId = store.startRun('chainpoll', judge, settings, o.runId);
  for (const r of records) store.saveVerdict({ runId, ...r.verdict });
  const results = items.map((item, i): ChainPollResult => {
    const polls = records.slice(i * plan.polls, (i + 1) * plan.polls).map((r) => r.judgment);
    const readable = polls.filter((p) => p.hallucination !== null);
    return { id: item.id, score: readable.length ? readable.filter((p) => p.hallucination).length / readable.length : null, polls };
  });
  const scored = results.filter((r) => r.score !== null);
  const report: ChainPollReport = {
    method: 'chainpoll', judge, runId, settings, items: results,
    meanScore: scored.length ? scored.reduce((a, r) => a + r.score!, 0) / scored.length : null,
    errors: results.flatMap((r) => r.polls).filter((p) => p.error !== null).length, usage: o.usage,
  };
  store.finishRun(runId, { meanScore: report.meanScore, errors: report.errors, items: results.map((r) => ({ id: r.id, score: r.score })) }, report.usage);
  return report;
}

/** Polls the judge on every item; the score is the fraction of yes. */
export async function chainPoll(judge: LanguageModelBackend | JudgeRunner, items: ChainPollItem[], opts: ChainPollOptions = {}): Promise<ChainPollReport> {
  const plan = planChainPoll(items, opts);
  const runner = judge instanceof JudgeRunner ? judge : new JudgeRunner(judge, opts);
  runner.expect(items.length * plan.polls);
  const records = await pollItems(runner, plan, items);
  return finishChainPoll(runner.store, runner.judge.id, plan, items, records, { runId: opts.runId, usage: runner.usage() });
}
