/**
 * Method options, declared once per family (src/methods/<family>/options.ts): each option's type and
 * range, its default, which methods (or other choices) it applies to, and its help. The CLI's flags
 * and checks (interfaces/cli), the Workbench API's request schemas and checks (interfaces/server)
 * and the Workbench forms (web/, through GET /api/methods/settings) are all built from these
 * declarations, so no two of them can disagree about what a method accepts.
 */
import { editDistance, LanternError, nearest } from '../errors.js';

/** What values an option takes, and how the CLI and JSON spell them. */
export type OptionType =
  /** `max` absent: no upper bound (checked against the model or prompt where one exists). */
  | { kind: 'integer'; min: number; max?: number }
  | { kind: 'number'; min?: number; exclusiveMin?: number; max?: number }
  | { kind: 'enum'; choices: readonly string[] }
  /** Some of `choices`: comma-separated on the command line, an array in JSON. */
  | { kind: 'choices'; choices: readonly string[] }
  /** Non-negative integers: comma-separated on the command line, an array in JSON. */
  | { kind: 'integers'; maxItems: number }
  | { kind: 'boolean' }
  /** A prompt: the server bounds its length (a request-size limit, not the method's). */
  | { kind: 'prompt' }
  /** A short string: a token's text, a node name, a hook name. */
  | { kind: 'text'; maxLength: number }
  /** 'zero' or a token: 'token:<id or text>' on the command line, { token } or { text } in JSON. */
  | { kind: 'token' };

/** One option of a method family: its name in the library and the API, its CLI flag, its type, default, and the methods that read it. */
export interface OptionSpec<K extends string = string> {
  /** The option's name in the library's options and in API requests. */
  key: K;
  /** The CLI flag, e.g. '--batch-size'. */
  flag: string;
  /** A one-letter CLI alias, e.g. '-n'. */
  short?: string;
  /** The CLI value placeholder ('' for switches). */
  arg: string;
  type: OptionType;
  default?: string | number | boolean | readonly string[];
  required?: boolean;
  /** Only read when another option has one of these values (e.g. the method); giving it otherwise is an error. */
  appliesTo?: { key: string; values: readonly string[] };
  /** Also read, whatever `appliesTo` says, when this switch is on (attribution's evaluate). */
  alsoWith?: { key: string; flag: string };
  /** Offered by one interface only (e.g. a file path, which the server does not read). */
  only?: 'cli' | 'api';
  help: string;
}

/** A family's declaration: the options of one CLI command and one API endpoint. */
export interface MethodFamily {
  /** The family's name, e.g. 'patching' (also the API's run kind where it has an endpoint). */
  name: string;
  /** The CLI command, e.g. 'patch'. */
  command: string;
  options: readonly OptionSpec[];
}

export function optionByKey(options: readonly OptionSpec[], key: string): OptionSpec | undefined {
  return options.find((o) => o.key === key);
}

export function cliOptions(family: MethodFamily): OptionSpec[] {
  return family.options.filter((o) => o.only !== 'api');
}

export function apiOptions(family: MethodFamily): OptionSpec[] {
  return family.options.filter((o) => o.only !== 'cli');
}

/**
 * An option given where it is not read is a mistake to report, not to ignore. `given(key)` is the
 * value given (undefined when left out); an `appliesTo` key left out counts as its default.
 * `style` words the error for the command line (flags) or the API (JSON keys).
 */
export function checkOptionsApply(options: readonly OptionSpec[], given: (key: string) => unknown, style: 'cli' | 'api'): void {
  for (const spec of options) {
    const on = spec.appliesTo;
    if (!on || given(spec.key) === undefined) continue;
    if (spec.alsoWith && given(spec.alsoWith.key)) continue;
    const dep = optionByKey(options, on.key);
    const value = given(on.key) ?? dep?.default;
    if (on.values.includes(String(value))) continue;
    const vs = on.values;
    if (style === 'cli') {
      const list = vs.length > 1 ? `${vs.slice(0, -1).join(', ')} or ${vs[vs.length - 1]}` : vs[0];
      throw new LanternError(`${spec.flag} applies only to ${dep?.flag ?? `--${on.key}`} ${list}${spec.alsoWith ? `, or with ${spec.alsoWith.flag}` : ''}`);
    }
    throw new LanternError(`${spec.key} applies only to ${on.key} ${vs.join(', ')}${spec.alsoWith ? `, or with ${spec.alsoWith.key}` : ''} (the ${on.key} is ${value})`);
  }
}

/** The JSON schema of one option in an API request; `promptMaxLength` bounds prompts. */
export function optionSchema(spec: OptionSpec, promptMaxLength = 4000): Record<string, unknown> {
  const on = spec.appliesTo ? `${spec.appliesTo.values.join(', ')}: ` : '';
  const description = `${on}${spec.help}`;
  // A default only where the option always applies: a filled-in default must not look like a given option.
  const dflt = spec.default !== undefined && !spec.appliesTo ? { default: spec.default } : {};
  const t = spec.type;
  switch (t.kind) {
    case 'integer': return { type: 'integer', minimum: t.min, ...(t.max !== undefined ? { maximum: t.max } : {}), ...dflt, description };
    case 'number': return {
      type: 'number', ...(t.min !== undefined ? { minimum: t.min } : {}), ...(t.exclusiveMin !== undefined ? { exclusiveMinimum: t.exclusiveMin } : {}), ...(t.max !== undefined ? { maximum: t.max } : {}), ...dflt, description,
    };
    case 'enum': return { type: 'string', enum: [...t.choices], ...dflt, description };
    case 'choices': return { type: 'array', items: { type: 'string', enum: [...t.choices] }, minItems: 1, uniqueItems: true, ...dflt, description };
    case 'integers': return { type: 'array', items: { type: 'integer', minimum: 0 }, maxItems: t.maxItems, description };
    case 'boolean': return { type: 'boolean', ...dflt, description };
    case 'prompt': return { type: 'string', minLength: 1, maxLength: promptMaxLength, description };
    case 'text': return { type: 'string', minLength: 1, maxLength: t.maxLength, description };
    case 'token': return {
      description,
      oneOf: [
        { type: 'string', enum: ['zero'] },
        { type: 'object', additionalProperties: false, required: ['token'], properties: { token: { type: 'integer', minimum: 0 } } },
        { type: 'object', additionalProperties: false, required: ['text'], properties: { text: { type: 'string', minLength: 1, maxLength: 100 } } },
      ],
    };
  }
}

/**
 * The request schema of a family's endpoint: its API options plus `extra` properties (the model,
 * a run's title). Unknown fields are refused.
 */
export function requestSchema(family: MethodFamily, extra: Record<string, unknown>, promptMaxLength?: number): Record<string, unknown> {
  const options = apiOptions(family);
  return {
    type: 'object', additionalProperties: false, required: options.filter((o) => o.required).map((o) => o.key),
    properties: { ...extra, ...Object.fromEntries(options.map((o) => [o.key, optionSchema(o, promptMaxLength)])) },
  };
}

/** The text of a range, as the CLI's errors give it. */
function rangeText(t: Extract<OptionType, { kind: 'integer' | 'number' }>): string {
  if (t.kind === 'integer') {
    if (t.max !== undefined) return `an integer from ${t.min} to ${t.max}`;
    return t.min === 0 ? 'a non-negative integer' : t.min === 1 ? 'a positive integer' : `an integer of at least ${t.min}`;
  }
  if (t.max !== undefined) return t.exclusiveMin !== undefined ? `a number above ${t.exclusiveMin} and at most ${t.max}` : `a number from ${t.min} to ${t.max}`;
  if (t.exclusiveMin !== undefined) return t.exclusiveMin === 0 ? 'a positive number' : `a number above ${t.exclusiveMin}`;
  return t.min === 0 ? 'a non-negative number' : `a number of at least ${t.min}`;
}

/** A CLI value parser for one option (tokens stay strings here: they need the model's tokenizer). */
export function parseOption(spec: OptionSpec, v: string): unknown {
  const t = spec.type;
  const bad = (what: string): never => { throw new LanternError(`${spec.flag} must be ${what}, got '${v}'`); };
  switch (t.kind) {
    case 'integer': {
      const n = Number(v);
      return v.trim() !== '' && Number.isInteger(n) && n >= t.min && (t.max === undefined || n <= t.max) ? n : bad(rangeText(t));
    }
    case 'number': {
      const n = Number(v);
      const low = t.exclusiveMin !== undefined ? n > t.exclusiveMin : n >= (t.min ?? -Infinity);
      return v.trim() !== '' && Number.isFinite(n) && low && (t.max === undefined || n <= t.max) ? n : bad(rangeText(t));
    }
    case 'enum': {
      if (t.choices.includes(v)) return v;
      // A suggestion only for a likely typo, not for any value at all.
      const near = nearest(v, t.choices, 1).filter((c) => editDistance(v, c) <= Math.max(2, Math.floor(c.length / 3)));
      return bad(`one of ${t.choices.join(', ')}${near.length ? ` (did you mean '${near[0]}'?)` : ''}`);
    }
    case 'choices': {
      const xs = v.split(',').map((s) => s.trim());
      const ok = xs.length > 0 && xs.every((x) => t.choices.includes(x)) && new Set(xs).size === xs.length;
      return ok ? xs : bad(`some of ${t.choices.join(', ')}, comma-separated, each once`);
    }
    case 'integers': {
      const xs = v.split(',').map((s) => (s.trim() === '' ? NaN : Number(s.trim())));
      return xs.every((n) => Number.isInteger(n) && n >= 0) && xs.length <= t.maxItems ? xs : bad('comma-separated non-negative integers');
    }
    case 'text': return v !== '' && v.length <= t.maxLength ? v : bad(`1 to ${t.maxLength} characters`);
    default: return v;
  }
}

/** The parsed CLI values (or the API body) with each option's declared default filled in where left out. */
export function withDefaults(family: MethodFamily, given: Record<string, unknown>): Record<string, any> {
  const out: Record<string, any> = { ...given };
  for (const spec of family.options) if (out[spec.key] === undefined && spec.default !== undefined) out[spec.key] = spec.default;
  return out;
}

/**
 * An option as GET /api/methods/settings describes it to clients (the Workbench builds its forms
 * from these): the spec without what only the CLI reads.
 */
export interface DescribedOption {
  key: string;
  type: OptionType;
  default?: string | number | boolean | readonly string[];
  required: boolean;
  /** Read only when another option (e.g. the method) has one of these values. */
  appliesTo?: { key: string; values: readonly string[] };
  /** Also read when this switch is on. */
  alsoWith?: string;
  help: string;
}

/** A method family as GET /api/methods/settings describes it: its name, CLI command, and API options. */
export interface DescribedFamily {
  name: string;
  command: string;
  options: DescribedOption[];
}

/** A family's API options as GET /api/methods/settings describes them (the Workbench builds its forms from this). */
export function describeFamily(family: MethodFamily): DescribedFamily {
  return {
    name: family.name, command: family.command,
    options: apiOptions(family).map(({ key, type, default: dflt, required, appliesTo, alsoWith, help }) => ({
      key, type, ...(dflt !== undefined ? { default: dflt } : {}), required: Boolean(required), ...(appliesTo ? { appliesTo } : {}), ...(alsoWith ? { alsoWith: alsoWith.key } : {}), help,
    })),
  };
}
