/** The options of circuit discovery and path patching (`lantern circuit`), declared once (see ../options.ts). */
import type { MethodFamily } from '../options.js';
import { CIRCUIT_TASKS } from './data.js';
import { IG_PATHS } from './discovery.js';

export const CIRCUIT_METHODS = ['acdc', 'eap', 'path'] as const;

/** Circuit discovery's options (`lantern circuit`), declared once. */
export const CIRCUITS: MethodFamily = {
  name: 'circuits', command: 'circuit',
  options: [
    { key: 'task', flag: '--task', arg: '<task>', type: { kind: 'enum', choices: CIRCUIT_TASKS }, required: true, help: 'clean/corrupted examples' },
    { key: 'method', flag: '--method', arg: '<method>', type: { kind: 'enum', choices: CIRCUIT_METHODS }, default: 'acdc', help: 'acdc, eap, or path (path patching; needs a sender or a path)' },
    { key: 'threshold', flag: '--threshold', arg: '<x>', type: { kind: 'number', min: 0 }, default: 0.1, appliesTo: { key: 'method', values: ['acdc', 'eap'] }, help: 'acdc: keep an edge when patching it raises KL(clean || circuit) by at least this; eap: keep edges whose |score| (fraction of the clean-corrupted metric difference) is at least this' },
    { key: 'n', flag: '--n', short: '-n', arg: '<n>', type: { kind: 'integer', min: 1 }, default: 10, help: 'examples' },
    { key: 'seed', flag: '--seed', arg: '<n>', type: { kind: 'integer', min: 0 }, default: 0, help: 'seed of the examples' },
    { key: 'igSteps', flag: '--ig-steps', arg: '<n>', type: { kind: 'integer', min: 0 }, default: 5, appliesTo: { key: 'method', values: ['eap'] }, help: 'integrated-gradient steps from clean to corrupted (EAP-IG); 0 for plain EAP, the gradient at the clean point' },
    { key: 'igPath', flag: '--ig-path', arg: '<path>', type: { kind: 'enum', choices: IG_PATHS }, default: 'receivers', appliesTo: { key: 'method', values: ['eap'] }, help: "receivers (move one layer's queries, keys, values, MLP input or the logits at a time, the rest clean) or all (every edge together: cheaper, but blind to edges that need the rest clean)" },
    { key: 'sender', flag: '--sender', arg: '<node>', type: { kind: 'text', maxLength: 100 }, appliesTo: { key: 'method', values: ['path'] }, help: 'every direct path out of this node (input, L{l}H{h}, MLP{l})' },
    { key: 'path', flag: '--path', arg: '<nodes>', type: { kind: 'text', maxLength: 1000 }, appliesTo: { key: 'method', values: ['path'] }, help: 'one path, comma-separated: a sender then receivers (L{l}H{h}.q|k|v, MLP{l}, logits), e.g. L0H2,L1H1.k,logits' },
  ],
};
