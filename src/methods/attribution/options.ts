/**
 * The attribution settings, declared once: each one's type and range, which methods read it, and
 * its help text. The CLI's flags and checks (interfaces/cli/attribute.ts) and the Workbench API's
 * request schema and checks (interfaces/server/compute.ts) are both built from this table, so the
 * two cannot disagree about what a method accepts.
 */
import { LanternError } from '../../errors.js';
import { INTEGRATION_RULES } from './gradient.js';
import type { AttributionSettings, Method } from './index.js';

export type SettingType =
  | { kind: 'integer'; min: number; max: number }
  | { kind: 'number'; exclusiveMin: number; max: number }
  | { kind: 'enum'; choices: readonly string[] }
  /** Non-negative integers: comma-separated on the command line, an array in JSON. */
  | { kind: 'integers'; maxItems: number }
  | { kind: 'boolean' }
  /** A hook name. */
  | { kind: 'hook' }
  /** 'zero' or a token: 'token:<id or text>' on the command line, { token } or { text } in JSON. */
  | { kind: 'token' };

export interface SettingSpec {
  key: keyof AttributionSettings;
  /** The CLI flag, e.g. '--kernel-width'. */
  flag: string;
  /** The CLI value placeholder ('' for switches). */
  arg: string;
  type: SettingType;
  methods: readonly Method[];
  /** With --eval (`evaluate`), faithfulness reads this setting whatever the method. */
  alsoForEval?: boolean;
  help: string;
}

const GRADIENT: Method[] = ['ig', 'saliency', 'input-x-grad', 'layer-ig', 'layer-grad-x-act'];
const SAMPLING: Method[] = ['lime', 'shap', 'shapley'];
const MASKING: Method[] = ['occlusion', ...SAMPLING];

/** The attribution settings each method takes, with their CLI flags and Workbench fields, declared once so every interface offers the same ones. */
export const ATTRIBUTION_SETTINGS: readonly SettingSpec[] = [
  { key: 'hook', flag: '--hook', arg: '<name>', type: { kind: 'hook' }, methods: ['layer-ig', 'layer-grad-x-act'], help: 'the hook point whose activation is attributed, e.g. blocks.3.hook_resid_post (default hook_embed)' },
  { key: 'steps', flag: '--steps', arg: '<n>', type: { kind: 'integer', min: 1, max: 512 }, methods: ['ig', 'layer-ig'], help: 'integration steps (default 50)' },
  { key: 'rule', flag: '--rule', arg: '<rule>', type: { kind: 'enum', choices: INTEGRATION_RULES }, methods: ['ig', 'layer-ig'], help: `integration rule: ${INTEGRATION_RULES.join(', ')} (default gausslegendre)` },
  { key: 'baseline', flag: '--baseline', arg: '<b>', type: { kind: 'token' }, methods: ['ig', 'layer-ig'], help: "'zero' (default) or a token at every prompt position" },
  { key: 'aggregate', flag: '--aggregate', arg: '<how>', type: { kind: 'enum', choices: ['sum', 'l2'] }, methods: GRADIENT, help: "embedding dims -> token score: 'sum' or 'l2' (default: l2 for saliency, sum otherwise)" },
  { key: 'batchSize', flag: '--batch-size', arg: '<n>', type: { kind: 'integer', min: 1, max: 256 }, methods: [...GRADIENT, 'value-zeroing', ...MASKING], alsoForEval: true, help: 'inputs per model run (ig steps, masked copies)' },
  { key: 'layers', flag: '--layers', arg: '<list>', type: { kind: 'integers', maxItems: 4096 }, methods: ['attention', 'rollout', 'value-zeroing'], help: 'layers to use, e.g. 0,1 (attention, rollout: default all; value-zeroing: layers to average, default the last, or roll out, default all)' },
  { key: 'rollout', flag: '--rollout', arg: '', type: { kind: 'boolean' }, methods: ['value-zeroing'], help: "multiply the chosen layers' value-zeroing matrices (value zeroing rollout; for attention rollout use the method rollout)" },
  { key: 'heads', flag: '--heads', arg: '<list>', type: { kind: 'integers', maxItems: 4096 }, methods: ['attention', 'rollout'], help: 'heads to average (default all)' },
  { key: 'samples', flag: '--samples', arg: '<n>', type: { kind: 'integer', min: 1, max: 5000 }, methods: SAMPLING, help: 'lime: random masks (default 200); shap: coalition budget (default max(200, 4 × tokens); all coalitions when 2^n − 2 fit); shapley: permutations (default 50)' },
  { key: 'kernelWidth', flag: '--kernel-width', arg: '<w>', type: { kind: 'number', exclusiveMin: 0, max: 100 }, methods: ['lime'], help: 'width of the exponential kernel on cosine distance to the full prompt (default 0.25)' },
  { key: 'mask', flag: '--mask', arg: '<m>', type: { kind: 'token' }, methods: MASKING, alsoForEval: true, help: "'zero' (zero the token embedding, default) or a substituted token" },
  { key: 'granularity', flag: '--granularity', arg: '<g>', type: { kind: 'enum', choices: ['token', 'word', 'sentence'] }, methods: MASKING, help: "mask each 'token' (default), or whole 'word's or 'sentence's together (one score each)" },
];

/** The settings `method` reads (with `evaluate`, also those faithfulness reads). */
export function settingApplies(spec: SettingSpec, method: string, evaluate: boolean): boolean {
  return (spec.methods as readonly string[]).includes(method) || (evaluate && Boolean(spec.alsoForEval));
}

/**
 * A setting given to a method that does not read it is a mistake to report, not to ignore.
 * `style` words the error for the command line (flags) or the API (JSON keys).
 */
export function checkSettingsApply(method: string, given: (key: string) => boolean, evaluate: boolean, style: 'cli' | 'api'): void {
  for (const spec of ATTRIBUTION_SETTINGS) {
    if (!given(spec.key) || settingApplies(spec, method, evaluate)) continue;
    const ms = spec.methods;
    const list = ms.length > 1 ? `${ms.slice(0, -1).join(', ')} or ${ms[ms.length - 1]}` : ms[0];
    throw new LanternError(style === 'cli'
      ? `${spec.flag} applies only to --method ${list}${spec.alsoForEval ? ', or with --eval' : ''}`
      : `${spec.key} applies only to method ${ms.join(', ')}${spec.alsoForEval ? ', or with evaluate' : ''} (the method is ${method})`);
  }
}

/** The JSON schema of one setting in an API request. */
export function settingSchema(spec: SettingSpec): Record<string, unknown> {
  const description = `${spec.methods.join(', ')}: ${spec.help}`;
  const t = spec.type;
  switch (t.kind) {
    case 'integer': return { type: 'integer', minimum: t.min, maximum: t.max, description };
    case 'number': return { type: 'number', exclusiveMinimum: t.exclusiveMin, maximum: t.max, description };
    case 'enum': return { type: 'string', enum: [...t.choices], description };
    case 'integers': return { type: 'array', items: { type: 'integer', minimum: 0 }, maxItems: t.maxItems, description };
    case 'boolean': return { type: 'boolean', description };
    case 'hook': return { type: 'string', minLength: 1, maxLength: 200, description };
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

/** A CLI value parser for one setting (tokens stay strings here: they need the model's tokenizer). */
export function parseSetting(spec: SettingSpec, v: string): unknown {
  const t = spec.type;
  const bad = (what: string): never => { throw new LanternError(`${spec.flag} must be ${what}, got '${v}'`); };
  switch (t.kind) {
    case 'integer': {
      const n = Number(v);
      return Number.isInteger(n) && n >= t.min && n <= t.max && v.trim() !== '' ? n : bad(`an integer from ${t.min} to ${t.max}`);
    }
    case 'number': {
      const n = Number(v);
      return Number.isFinite(n) && n > t.exclusiveMin && n <= t.max && v.trim() !== '' ? n : bad(`a number above ${t.exclusiveMin} and at most ${t.max}`);
    }
    case 'enum': return t.choices.includes(v) ? v : bad(`one of ${t.choices.join(', ')}`);
    case 'integers': {
      const xs = v.split(',').map((s) => (s.trim() === '' ? NaN : Number(s.trim())));
      return xs.every((n) => Number.isInteger(n) && n >= 0) && xs.length <= t.maxItems ? xs : bad('comma-separated non-negative integers');
    }
    default: return v;
  }
}
