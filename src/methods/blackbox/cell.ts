/**
 * CELL and m-CELL contrastive explanations (Luss, Miehling & Dhurandhar 2024, "CELL your Model:
 * Contrastive Explanations for Large Language Models", arXiv 2406.11785): the smallest edit of the
 * prompt found that moves the response by more than ε under a scoring function (scorers.ts). The
 * answer reads "had you written x' instead of x, the model would have said y' instead of y".
 *
 * The prompt is cut into chunks of `chunkWords` words within sentences (text.ts). An edit masks one
 * chunk not yet edited and infills it (infill.ts); each edited prompt costs one call of the model
 * being explained. `budget` (default 100) bounds those calls, *including* the call for the
 * original response, and is never exceeded: a repeated prompt is answered from a cache at no cost,
 * and the search stops when the next call would go over. Infiller and judge calls are counted and
 * reported separately (they are other models, as in the paper).
 *
 * CELL (budgeted, after ICX360's implementation): q = ⌊B / log2 B⌋. Outer iteration i uses
 * n = 2^(i+1) centres while (i+1)·2^(i+1) ≤ q, else the last such n. ⌊α·n⌋ centres extend earlier
 * candidates (one more edit within `radius` chunks of one of their edits); the rest are fresh
 * single edits at positions never tried. Then ⌈log2 n⌉ rounds of successive halving: every centre
 * spawns ⌊q / (m·⌈log2 n⌉)⌋ children (one more edit near one of its edits), and the ⌈m/2⌉ best of
 * children and centres by |s| become the next centres. The search stops at the first candidate with
 * |s| > ε (ICX360 finishes the round and takes its best; stopping at once saves budget), when the
 * budget is spent, or when an outer iteration asks the model nothing new; then the best candidate
 * seen is returned, flagged `found: false`.
 *
 * m-CELL (myopic): each round tries one more edit at every chunk not yet edited, and commits the
 * edit with the largest |s|. It stops when |s| > ε, after 3 rounds in a row that raise the best |s|
 * by ≤ 1e-3, when no chunk is left, or when the budget is spent.
 */
import { LanternError } from '../../errors.js';
import type { LanguageModelBackend } from '../../backends/types.js';
import { Rng } from '../../rng.js';
import { checkInt, checkNumber, type Progress } from './common.js';
import type { Infiller } from './infill.js';
import type { ContrastScorer } from './scorers.js';
import { splitChunks } from './text.js';

/** CELL's numeric settings (see {@link CELL_DEFAULTS}). */
export interface CellSettings {
  /** Contrast threshold on |score| (default 0.5). */
  epsilon?: number;
  /** Calls of the explained model, the original response included (default 100). */
  budget?: number;
  /** Words per chunk (default 1). */
  chunkWords?: number;
  /** CELL: new edits land within this many chunks of an earlier edit (default 5). */
  radius?: number;
  /** CELL: share of centres that extend earlier candidates (default 0.5). */
  alpha?: number;
  /** Response length in tokens (default 24). */
  maxTokens?: number;
}

/** CELL's defaults: ε, call budget, chunk size, search radius, α and tokens per response. */
export const CELL_DEFAULTS = { epsilon: 0.5, budget: 100, chunkWords: 1, radius: 5, alpha: 0.5, maxTokens: 24 } as const;

/** One edit of the prompt: the chunks replaced and the new text. */
export interface Edit {
  /** Chunk index in the original prompt. */
  position: number;
  from: string;
  /** '' when the infiller deleted the chunk. */
  to: string;
}

/** Why CELL stopped: an edit was found, the budget ran out, nothing was left to try, or the search stopped improving. */
export type StopReason = 'found' | 'budget' | 'exhausted' | 'stalled';

/** CELL's explanation: the smallest edit found that moves the response past ε, the calls used, and why it stopped. */
export interface CellResult {
  method: 'cell' | 'mcell';
  backend: string;
  scorer: string;
  infiller: string;
  settings: Required<CellSettings>;
  seed: number;
  prompt: string;
  response: string;
  chunks: string[];
  editedPrompt: string;
  editedResponse: string;
  edits: Edit[];
  score: number;
  /** |score| > ε. */
  found: boolean;
  stopReason: StopReason;
  /** Edited prompts scored. */
  candidates: number;
  calls: { model: number; budget: number; infiller: number; judge: number };
}

/** What CELL explains and through which backend, scorer and infiller. */
export interface CellOptions extends CellSettings {
  scorer: ContrastScorer;
  infiller: Infiller;
  seed?: number;
  onProgress?: Progress;
  signal?: AbortSignal;
}

/** Fills in CELL's defaults and refuses out-of-range settings. */
export function checkCellSettings(s: CellSettings): Required<CellSettings> {
  return {
    epsilon: checkNumber('CELL epsilon', s.epsilon ?? CELL_DEFAULTS.epsilon, (x) => x >= 0, 'a non-negative number'),
    budget: checkInt('CELL budget (model calls)', s.budget ?? CELL_DEFAULTS.budget, 2),
    chunkWords: checkInt('CELL chunk size (words)', s.chunkWords ?? CELL_DEFAULTS.chunkWords, 1),
    radius: checkInt('CELL radius (chunks)', s.radius ?? CELL_DEFAULTS.radius, 0),
    alpha: checkNumber('CELL alpha', s.alpha ?? CELL_DEFAULTS.alpha, (x) => x >= 0 && x <= 1, 'a number in [0, 1]'),
    maxTokens: checkInt('CELL max tokens', s.maxTokens ?? CELL_DEFAULTS.maxTokens, 1),
  };
}

interface Candidate {
  chunks: string[];
  changed: boolean[];
  edits: Edit[];
  prompt: string;
  response: string;
  score: number;
}

/** The explained model behind a hard call budget. */
class BudgetedModel {
  used = 0;
  private readonly cache = new Map<string, string>();

  constructor(
    private readonly backend: LanguageModelBackend, readonly budget: number, private readonly maxTokens: number,
    private readonly onProgress?: Progress, private readonly signal?: AbortSignal,
  ) {}

  get spent(): boolean {
    return this.used >= this.budget;
  }

  /** The response, or null when answering would exceed the budget. */
  async respond(prompt: string): Promise<string | null> {
    const hit = this.cache.get(prompt);
    if (hit !== undefined) return hit;
    if (this.used >= this.budget) return null;
    if (this.signal?.aborted) throw new LanternError('the contrastive search was cancelled');
    this.used++;
    const g = await this.backend.generate(prompt, { maxTokens: this.maxTokens, temperature: 0, signal: this.signal });
    this.cache.set(prompt, g.text);
    this.onProgress?.(this.used, this.budget);
    return g.text;
  }
}

const joinChunks = (chunks: string[]) => chunks.filter((c) => c.length > 0).join(' ');

class Search {
  readonly model: BudgetedModel;
  readonly rng: Rng;
  readonly s: Required<CellSettings>;
  root!: Candidate;
  evaluated = 0;
  best: Candidate | undefined;
  winner: Candidate | undefined;

  constructor(readonly backend: LanguageModelBackend, readonly prompt: string, readonly opts: CellOptions) {
    this.s = checkCellSettings(opts);
    const seed = opts.seed ?? 0;
    checkInt('seed', seed, 0);
    this.rng = new Rng(seed);
    this.model = new BudgetedModel(backend, this.s.budget, this.s.maxTokens, opts.onProgress, opts.signal);
  }

  async start(): Promise<void> {
    const chunks = splitChunks(this.prompt, this.s.chunkWords);
    if (chunks.length === 0) throw new LanternError('the prompt is empty: nothing to edit');
    const response = await this.model.respond(joinChunks(chunks));
    this.root = { chunks, changed: chunks.map(() => false), edits: [], prompt: joinChunks(chunks), response: response!, score: 0 };
  }

  /** One more edit of `parent` at `pos`; null when the budget cannot pay for it, undefined when there is nothing to ask. */
  async child(parent: Candidate, pos: number): Promise<Candidate | null | undefined> {
    if (this.model.spent) return null;
    const to = await this.opts.infiller.infill(parent.chunks, pos, this.rng.int(0x7fffffff));
    const chunks = [...parent.chunks];
    chunks[pos] = to;
    const prompt = joinChunks(chunks);
    if (prompt.length === 0) return undefined;
    const response = await this.model.respond(prompt);
    if (response === null) return null;
    const score = await this.opts.scorer.score(this.root.prompt, this.root.response, prompt, response);
    const changed = [...parent.changed];
    changed[pos] = true;
    const c: Candidate = { chunks, changed, edits: [...parent.edits, { position: pos, from: this.root.chunks[pos], to }], prompt, response, score };
    this.evaluated++;
    if (!this.best || Math.abs(score) > Math.abs(this.best.score) || (Math.abs(score) === Math.abs(this.best.score) && c.edits.length < this.best.edits.length)) this.best = c;
    if (!this.winner && Math.abs(score) > this.s.epsilon) this.winner = c;
    return c;
  }

  sampleOf<T>(items: T[], k: number): T[] {
    const a = [...items];
    for (let i = 0; i < Math.min(k, a.length); i++) {
      const j = i + this.rng.int(a.length - i);
      [a[i], a[j]] = [a[j], a[i]];
    }
    return a.slice(0, Math.min(k, a.length));
  }

  /** Up to `count` children of `parent`, each one more edit within the radius of one of its edits. */
  async near(parent: Candidate, count: number): Promise<Candidate[]> {
    const edited = parent.changed.flatMap((c, i) => (c ? [i] : []));
    if (edited.length === 0 || count <= 0) return [];
    const [focus] = this.sampleOf(edited, 1);
    const open = parent.changed.flatMap((c, i) => (!c && Math.abs(i - focus) <= this.s.radius ? [i] : []));
    const out: Candidate[] = [];
    for (const pos of this.sampleOf(open, count)) {
      if (this.winner) break;
      const c = await this.child(parent, pos);
      if (c === null) break;
      if (c) out.push(c);
    }
    return out;
  }

  async cell(): Promise<StopReason> {
    const B = this.s.budget;
    const q = Math.floor(B / Math.log2(B));
    const all: Candidate[] = [];
    const untried = new Set(this.root.chunks.map((_, i) => i));
    let k = 0;
    for (let i = 0; ; i++) {
      if (this.winner) return 'found';
      if (this.model.spent) return 'budget';
      const before = this.model.used;
      if ((i + 1) * 2 ** (i + 1) <= q) k = i + 1;
      const n = 2 ** k;
      let m = n;
      const fromList = Math.min(Math.floor(m * this.s.alpha), all.length);
      const fromScratch = Math.min(m - fromList, untried.size);
      const extend = this.sampleOf(all, fromList);
      const fresh = this.sampleOf([...untried], fromScratch);
      let centres: Candidate[] = [];
      for (const pos of fresh) {
        if (this.winner || this.model.spent) break;
        untried.delete(pos);
        const c = await this.child(this.root, pos);
        if (c) centres.push(c);
      }
      for (const p of extend) {
        if (this.winner || this.model.spent) break;
        centres.push(...(await this.near(p, 1)));
      }
      all.push(...centres);
      const rounds = Math.ceil(Math.log2(n));
      for (let r = 0; r < rounds && centres.length > 0; r++) {
        if (this.winner || this.model.spent) break;
        const perCentre = Math.floor(q / m / rounds);
        const children: Candidate[] = [];
        for (const c of centres) {
          if (this.winner || this.model.spent) break;
          children.push(...(await this.near(c, perCentre)));
        }
        all.push(...children);
        m = Math.ceil(m / 2);
        centres = [...children, ...centres].sort((a, b) => Math.abs(b.score) - Math.abs(a.score)).slice(0, m);
      }
      if (this.winner) return 'found';
      // An iteration that asked the model nothing new (no positions left, or only repeats of cached
      // prompts) would be repeated identically: stop rather than spin.
      if (this.model.used === before) return this.model.spent ? 'budget' : 'exhausted';
    }
  }

  async mcell(): Promise<StopReason> {
    let current = this.root;
    let bestAbs = 0;
    let flat = 0;
    for (;;) {
      const open = current.changed.flatMap((c, i) => (c ? [] : [i]));
      if (open.length === 0) return 'exhausted';
      let roundBest: Candidate | undefined;
      let outOfBudget = false;
      for (const pos of open) {
        const c = await this.child(current, pos);
        if (c === null) {
          outOfBudget = true;
          break;
        }
        if (c && (!roundBest || Math.abs(c.score) > Math.abs(roundBest.score))) roundBest = c;
      }
      if (!roundBest) return outOfBudget ? 'budget' : 'exhausted';
      current = roundBest;
      if (Math.abs(current.score) > this.s.epsilon) {
        this.winner = current;
        return 'found';
      }
      if (outOfBudget) return 'budget';
      flat = Math.abs(current.score) - bestAbs <= 1e-3 ? flat + 1 : 0;
      bestAbs = Math.max(bestAbs, Math.abs(current.score));
      if (flat >= 3) return 'stalled';
    }
  }

  result(method: 'cell' | 'mcell', stopReason: StopReason): CellResult {
    const pick = this.winner ?? this.best ?? this.root;
    return {
      method, backend: this.backend.id, scorer: this.opts.scorer.id, infiller: this.opts.infiller.id, settings: this.s,
      seed: this.opts.seed ?? 0, prompt: this.root.prompt, response: this.root.response, chunks: this.root.chunks,
      editedPrompt: pick.prompt, editedResponse: pick.response, edits: pick.edits, score: pick.score,
      found: Math.abs(pick.score) > this.s.epsilon && pick !== this.root, stopReason, candidates: this.evaluated,
      calls: { model: this.model.used, budget: this.s.budget, infiller: this.opts.infiller.calls(), judge: this.opts.scorer.calls() },
    };
  }
}

/** CELL: budgeted successive-halving search for a contrastive prompt edit. */
export async function cell(backend: LanguageModelBackend, prompt: string, opts: CellOptions): Promise<CellResult> {
  const s = new Search(backend, prompt, opts);
  await s.start();
  return s.result('cell', await s.cell());
}

/** m-CELL: greedy search, one committed edit per round. */
export async function mcell(backend: LanguageModelBackend, prompt: string, opts: CellOptions): Promise<CellResult> {
  const s = new Search(backend, prompt, opts);
  await s.start();
  return s.result('mcell', await s.mcell());
}
