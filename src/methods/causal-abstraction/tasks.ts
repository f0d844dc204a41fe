/**
 * Ready-made alignment tasks whose high-level variables a planted model computes at known places,
 * for checking causal-abstraction methods and for the guide.
 */
import { IOI_NAMES, IOI_TEMPLATES, LETTER_IDS } from '../../models/planted/index.js';
import { Rng } from '../../rng.js';
import { CausalInput, CausalModel, CausalValue } from './causal-model.js';
import type { AlignmentTask, CounterfactualExample } from './iia.js';

/**
 * IOI as a causal model: inputs template, a, b (the two names in order) and s (the subject, a or
 * b); variable S = s (the subject the network must not predict); output IO = whichever of a, b is
 * not S. The planted IOI model computes S at the last position after layer 0 (its SNAME block).
 */
export function ioiTask(): AlignmentTask {
  const causalModel = new CausalModel({
    inputs: ['template', 'a', 'b', 's'],
    variables: {
      S: { parents: ['s'], compute: (s) => s },
      IO: { parents: ['S', 'a', 'b'], compute: (S, a, b) => (S === a ? b : a) },
    },
    output: 'IO',
  });
  const tokens = (input: CausalInput) => IOI_TEMPLATES[Number(input.template)].map((p) => (p === 'A' ? Number(input.a) : p === 'B' ? Number(input.b) : p === 'S' ? Number(input.s) : p[1]));
  return { causalModel, tokens, answer: (v) => Number(v), candidates: IOI_NAMES.map((n) => n.id) };
}

/**
 * IOI examples for interchanging S: a random base, and a source with the same two names (in
 * either order, any template) whose subject is the base's indirect object, so the counterfactual
 * answer (the base's subject) always differs from the base's. `names` draws from the first few
 * names only, so S spans fewer dimensions (names − 1).
 */
export function ioiExamples(n: number, seed = 0, opts: { names?: number } = {}): CounterfactualExample[] {
  const rng = new Rng(seed);
  const names = Math.max(2, Math.min(IOI_NAMES.length, opts.names ?? IOI_NAMES.length));
  const draw = () => IOI_NAMES[rng.int(names)].id;
  return Array.from({ length: n }, () => {
    const x = draw();
    let y = draw();
    while (y === x) y = draw();
    const order = (p: number, q: number) => (rng.next() < 0.5 ? { a: p, b: q } : { a: q, b: p });
    const base = { template: rng.int(IOI_TEMPLATES.length), ...order(x, y), s: y };
    const source = { template: rng.int(IOI_TEMPLATES.length), ...order(x, y), s: x };
    return { base, sources: [source] };
  });
}

/**
 * Induction as a causal model: an input is a seed that draws `half` distinct letters s_0 … s_{half-1};
 * the prompt is them followed by s_0 … s_{repeat-1}, and the answer is s_{repeat}. Variables:
 * `prev` (the previous token at every position: the whole sequence, which the previous-token head
 * writes) and `next` (the answer, which the induction head writes at the last position).
 */
export function inductionTask(opts: { half?: number; repeat?: number } = {}): AlignmentTask {
  const half = opts.half ?? 8;
  const repeat = opts.repeat ?? 5;
  const letters = (seed: CausalValue) => {
    const rng = new Rng(Number(seed));
    const pick: number[] = [];
    while (pick.length < half) { const t = LETTER_IDS[rng.int(LETTER_IDS.length)]; if (!pick.includes(t)) pick.push(t); }
    return pick;
  };
  const causalModel = new CausalModel({
    inputs: ['seed'],
    variables: {
      prev: { parents: ['seed'], compute: (seed) => letters(seed).join(',') },
      next: { parents: ['prev'], compute: (prev) => Number(String(prev).split(',')[repeat]) },
    },
    output: 'next',
  });
  const tokens = (input: CausalInput) => { const s = letters(input.seed); return [...s, ...s.slice(0, repeat)]; };
  return { causalModel, tokens, answer: (v) => Number(v), candidates: [...LETTER_IDS] };
}
