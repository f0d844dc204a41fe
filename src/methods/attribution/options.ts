/**
 * The attribution settings, declared once (see ../options.ts): each one's type and range, which
 * methods read it, and its help text. The CLI's flags and checks (interfaces/cli/attribute.ts), the
 * Workbench API's request schema and checks (interfaces/server/compute.ts) and the Workbench form
 * are built from this table, so they cannot disagree about what a method accepts.
 */
import type { MethodFamily, OptionSpec } from '../options.js';
import { INTEGRATION_RULES } from './gradient.js';
import { METHODS } from './index.js';
import type { AttributionSettings, Method } from './index.js';

export interface SettingSpec extends OptionSpec<keyof AttributionSettings> {
  appliesTo: { key: 'method'; values: readonly Method[] };
}

const GRADIENT: Method[] = ['ig', 'saliency', 'input-x-grad', 'layer-ig', 'layer-grad-x-act'];
const SAMPLING: Method[] = ['lime', 'shap', 'shapley'];
const MASKING: Method[] = ['occlusion', ...SAMPLING];
const methods = (values: readonly Method[]) => ({ key: 'method' as const, values });
/** With evaluate (--eval), faithfulness reads the setting whatever the method. */
const EVAL = { key: 'evaluate', flag: '--eval' };

/** The attribution settings each method takes, with their CLI flags and Workbench fields, declared once so every interface offers the same ones. */
export const ATTRIBUTION_SETTINGS: readonly SettingSpec[] = [
  { key: 'hook', flag: '--hook', arg: '<name>', type: { kind: 'text', maxLength: 200 }, appliesTo: methods(['layer-ig', 'layer-grad-x-act']), help: 'the hook point whose activation is attributed, e.g. blocks.3.hook_resid_post (default hook_embed)' },
  { key: 'steps', flag: '--steps', arg: '<n>', type: { kind: 'integer', min: 1, max: 512 }, appliesTo: methods(['ig', 'layer-ig']), help: 'integration steps (default 50)' },
  { key: 'rule', flag: '--rule', arg: '<rule>', type: { kind: 'enum', choices: INTEGRATION_RULES }, appliesTo: methods(['ig', 'layer-ig']), help: 'integration rule (default gausslegendre)' },
  { key: 'baseline', flag: '--baseline', arg: '<b>', type: { kind: 'token' }, appliesTo: methods(['ig', 'layer-ig']), help: "'zero' (default) or a token at every prompt position" },
  { key: 'aggregate', flag: '--aggregate', arg: '<how>', type: { kind: 'enum', choices: ['sum', 'l2'] }, appliesTo: methods(GRADIENT), help: "embedding dims -> token score (default: l2 for saliency, sum otherwise)" },
  { key: 'batchSize', flag: '--batch-size', arg: '<n>', type: { kind: 'integer', min: 1, max: 256 }, appliesTo: methods([...GRADIENT, 'value-zeroing', ...MASKING]), alsoWith: EVAL, help: 'inputs per model run (ig steps, masked copies)' },
  { key: 'layers', flag: '--layers', arg: '<list>', type: { kind: 'integers', maxItems: 4096 }, appliesTo: methods(['attention', 'rollout', 'value-zeroing']), help: 'layers to use, e.g. 0,1 (attention, rollout: default all; value-zeroing: layers to average, default the last, or roll out, default all)' },
  { key: 'rollout', flag: '--rollout', arg: '', type: { kind: 'boolean' }, appliesTo: methods(['value-zeroing']), help: "multiply the chosen layers' value-zeroing matrices (value zeroing rollout; for attention rollout use the method rollout)" },
  { key: 'heads', flag: '--heads', arg: '<list>', type: { kind: 'integers', maxItems: 4096 }, appliesTo: methods(['attention', 'rollout']), help: 'heads to average (default all)' },
  { key: 'samples', flag: '--samples', arg: '<n>', type: { kind: 'integer', min: 1, max: 5000 }, appliesTo: methods(SAMPLING), help: 'lime: random masks (default 200); shap: coalition budget (default max(200, 4 × tokens); all coalitions when 2^n − 2 fit); shapley: permutations (default 50)' },
  { key: 'kernelWidth', flag: '--kernel-width', arg: '<w>', type: { kind: 'number', exclusiveMin: 0, max: 100 }, appliesTo: methods(['lime']), help: 'width of the exponential kernel on cosine distance to the full prompt (default 0.25)' },
  { key: 'mask', flag: '--mask', arg: '<m>', type: { kind: 'token' }, appliesTo: methods(MASKING), alsoWith: EVAL, help: "'zero' (zero the token embedding, default) or a substituted token" },
  { key: 'granularity', flag: '--granularity', arg: '<g>', type: { kind: 'enum', choices: ['token', 'word', 'sentence'] }, appliesTo: methods(MASKING), help: "mask each 'token' (default), or whole 'word's or 'sentence's together (one score each)" },
];

/**
 * The attribution family as the Workbench API and its form see it: the method and the settings.
 * (The CLI's other flags, such as --target, --foil and --eval, are declared with the command.)
 */
export const ATTRIBUTION: MethodFamily = {
  name: 'attribution', command: 'attribute',
  options: [
    { key: 'method', flag: '--method', arg: '<name>', type: { kind: 'enum', choices: METHODS }, default: 'ig', help: 'the attribution method' },
    ...ATTRIBUTION_SETTINGS,
  ],
};
