/**
 * Evaluation data from JSONL, CSV or Parquet (through readRows), in the shapes MT-Bench uses:
 *
 *   questions  question_id (or id), turns (a list, or one `question`/`prompt` string), optional
 *              reference (a list or one string) and category;
 *   answers    question_id, model (or model_id), and turns, or MT-Bench's choices[0].turns, or
 *              one `answer` string; an answers file without a model column takes its file name.
 *
 * CSV cells holding JSON lists (["a", "b"]) are read as lists.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { LanternError } from '../../errors.js';
import { readRows } from '../representations/data.js';
import { battlesFromRows } from './arena.js';
import type { ChainPollItem } from './chainpoll.js';
import type { Battle, EvalQuestion, HumanPairLabel, ModelAnswer } from './judge.js';
import { mcqFromRows, type McqQuestion } from './mcq.js';

/** Lantern's own small evaluation sample (questions, answers of three made-up models, battles, MCQ, completions), for tests and demos. */
export const SAMPLE_DATA = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'data', 'evaluation');

function textList(v: unknown, where: string, field: string): string[] | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  if (Array.isArray(v)) return v.map(String);
  if (typeof v === 'string') {
    if (v.trim().startsWith('[')) {
      try {
        const j = JSON.parse(v) as unknown;
        if (Array.isArray(j)) return j.map(String);
      } catch { /* plain text that happens to start with a bracket */ }
    }
    return [v];
  }
  throw new LanternError(`${where}: '${field}' must be text or a list of texts, got ${JSON.stringify(v)}`);
}

/** Questions from a file (MT-Bench style or a plain question column). */
export async function loadQuestions(file: string): Promise<EvalQuestion[]> {
  const rows = await readRows(file);
  if (!rows.length) throw new LanternError(`${file} has no questions`);
  return rows.map((r, i) => {
    const where = `${file} row ${i + 1}`;
    const id = r.question_id ?? r.id;
    if (id === undefined || id === null || id === '') throw new LanternError(`${where}: needs a question_id (or id)`);
    const turns = textList(r.turns ?? r.question ?? r.prompt, where, 'turns');
    if (!turns?.length) throw new LanternError(`${where}: needs turns (a list) or a question string; columns: ${Object.keys(r).join(', ')}`);
    const reference = textList(r.reference, where, 'reference');
    return { id: String(id), turns, ...(reference ? { reference } : {}), ...(r.category !== undefined ? { category: String(r.category) } : {}) };
  });
}

/** Answers from one or more files; a file without a model column names the model by its file name. */
export async function loadAnswers(files: string | string[]): Promise<ModelAnswer[]> {
  const out: ModelAnswer[] = [];
  for (const file of Array.isArray(files) ? files : [files]) {
    const rows = await readRows(file);
    rows.forEach((r, i) => {
      const where = `${file} row ${i + 1}`;
      const qid = r.question_id ?? r.id;
      if (qid === undefined || qid === null) throw new LanternError(`${where}: needs a question_id`);
      const model = r.model ?? r.model_id ?? path.basename(file).replace(/\.[^.]+$/, '');
      const choices = r.choices as { turns?: unknown }[] | undefined;
      const turns = textList(Array.isArray(choices) ? choices[0]?.turns : r.turns ?? r.answer, where, 'turns');
      if (!turns?.length) throw new LanternError(`${where}: needs turns, choices[0].turns, or an answer string`);
      out.push({ questionId: String(qid), model: String(model), turns });
    });
  }
  const seen = new Set<string>();
  for (const a of out) {
    const k = `${a.questionId}\n${a.model}`;
    if (seen.has(k)) throw new LanternError(`model '${a.model}' answers question '${a.questionId}' twice`);
    seen.add(k);
  }
  return out;
}

/** Battles (model_a, model_b, winner) from a file. */
export async function loadBattles(file: string): Promise<Battle[]> {
  return battlesFromRows(await readRows(file), file);
}

/** Human pairwise labels: question_id, model_a, model_b, winner. */
export async function loadHumanLabels(file: string): Promise<HumanPairLabel[]> {
  const rows = await readRows(file);
  return rows.map((r, i) => {
    const w = String(r.winner);
    if (!['model_a', 'model_b', 'tie', 'tie (bothbad)'].includes(w)) throw new LanternError(`${file} row ${i + 1}: winner ${JSON.stringify(r.winner)} is not model_a, model_b or tie`);
    return { questionId: String(r.question_id), model_a: String(r.model_a), model_b: String(r.model_b), winner: w.startsWith('tie') ? 'tie' : (w as 'model_a' | 'model_b') };
  });
}

/** Multiple-choice questions from a file. */
export async function loadMcq(file: string): Promise<McqQuestion[]> {
  return mcqFromRows(await readRows(file), file);
}

/** Completions to check for hallucinations: id, completion, optional prompt and reference. */
export async function loadCompletions(file: string): Promise<ChainPollItem[]> {
  const rows = await readRows(file);
  if (!rows.length) throw new LanternError(`${file} has no rows`);
  return rows.map((r, i) => {
    if (typeof r.completion !== 'string') throw new LanternError(`${file} row ${i + 1}: needs a 'completion' string; columns: ${Object.keys(r).join(', ')}`);
    return {
      id: String(r.id ?? i + 1), completion: r.completion,
      ...(typeof r.prompt === 'string' ? { prompt: r.prompt } : {}), ...(typeof r.reference === 'string' ? { reference: r.reference } : {}),
    };
  });
}
