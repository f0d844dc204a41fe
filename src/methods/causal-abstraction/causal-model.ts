/**
 * High-level causal models (Geiger et al.'s causal abstraction; pyvene's CausalModel): a small
 * program over input variables, as a graph of named variables each computed from its parents.
 * Interchange interventions on it give the counterfactual output a network must match: run the
 * base input with some variables set to the values they take on source inputs.
 *
 * In the library the variables are TypeScript functions; for the command line a JSON description
 * names one of a few operations per variable ({@link causalModelFromJson}).
 */
import { LanternError, nearest } from '../../errors.js';

/** A value of a high-level variable. */
export type CausalValue = number | string | boolean;
/** Values of the input variables. */
export type CausalInput = Record<string, CausalValue>;

/** A computed variable: its parents (inputs or other variables) and the function of their values. */
export interface CausalVariable {
  parents: string[];
  /** The variable's value from its parents' values, in the order of `parents`. */
  compute: (...parents: CausalValue[]) => CausalValue;
}

/** A causal model: input variable names, computed variables, and which one is the output. */
export interface CausalModelSpec {
  inputs: string[];
  variables: Record<string, CausalVariable>;
  output: string;
}

/** A high-level causal model that runs inputs, with or without interventions on its variables. */
export class CausalModel {
  /** Computed variables in an order where every parent comes first. */
  readonly order: string[];

  constructor(readonly spec: CausalModelSpec) {
    const { inputs, variables, output } = spec;
    const names = [...inputs, ...Object.keys(variables)];
    if (new Set(names).size !== names.length) throw new LanternError('causal model: a variable is both an input and computed, or named twice');
    const known = new Set(names);
    for (const [name, v] of Object.entries(variables)) {
      if (typeof v.compute !== 'function') throw new LanternError(`causal model: variable '${name}' has no compute function`);
      for (const p of v.parents ?? []) if (!known.has(p)) throw new LanternError(`causal model: variable '${name}' has an unknown parent '${p}'${hint(p, names)}`);
    }
    if (!known.has(output)) throw new LanternError(`causal model: unknown output variable '${output}'${hint(output, names)}`);
    // Depth-first topological order, rejecting cycles.
    const order: string[] = [];
    const state = new Map<string, 'visiting' | 'done'>();
    const visit = (n: string, path: string[]) => {
      if (!(n in variables) || state.get(n) === 'done') return;
      if (state.get(n) === 'visiting') throw new LanternError(`causal model: variables form a cycle: ${[...path, n].join(' -> ')}`);
      state.set(n, 'visiting');
      for (const p of variables[n].parents) visit(p, [...path, n]);
      state.set(n, 'done');
      order.push(n);
    };
    for (const n of Object.keys(variables)) visit(n, []);
    this.order = order;
  }

  /** Every variable's value on `input`, with the variables in `set` fixed to the given values. */
  run(input: CausalInput, set: Record<string, CausalValue> = {}): Record<string, CausalValue> {
    const values: Record<string, CausalValue> = {};
    for (const name of this.spec.inputs) {
      if (!(name in input)) throw new LanternError(`causal model: input lacks variable '${name}'`);
      values[name] = name in set ? set[name] : input[name];
    }
    for (const name of Object.keys(set)) this.checkVariable(name);
    for (const name of this.order) {
      const v = this.spec.variables[name];
      values[name] = name in set ? set[name] : v.compute(...v.parents.map((p) => values[p]));
    }
    return values;
  }

  /** The output on `input`. */
  output(input: CausalInput): CausalValue {
    return this.run(input)[this.spec.output];
  }

  /**
   * The interchange counterfactual: the output on `base` when each variable `variables[j]` takes
   * the value it has on `sources[j]`.
   */
  counterfactual(base: CausalInput, sources: CausalInput[], variables: string[]): CausalValue {
    if (sources.length !== variables.length) throw new LanternError(`causal model: ${variables.length} variables to interchange but ${sources.length} sources`);
    const set: Record<string, CausalValue> = {};
    variables.forEach((name, j) => {
      this.checkVariable(name);
      set[name] = this.run(sources[j])[name];
    });
    return this.run(base, set)[this.spec.output];
  }

  /** Throws a LanternError naming the nearest variables when `name` is not one. */
  checkVariable(name: string): void {
    const names = [...this.spec.inputs, ...Object.keys(this.spec.variables)];
    if (!names.includes(name)) throw new LanternError(`causal model: unknown variable '${name}'${hint(name, names)}`);
  }
}

function hint(name: string, names: string[]): string {
  const near = nearest(name, names, 2);
  return near.length ? ` (did you mean ${near.map((n) => `'${n}'`).join(' or ')}?)` : '';
}

// ---------------------------------------------------------------------------------------------
// JSON description (for the command line)

/** An operation a JSON causal model can name. */
export interface CausalOp {
  /** How many parents it takes ('any': one or more). */
  arity: number | 'any';
  /** Its value from the parents' values, in order. */
  fn: (...v: CausalValue[]) => CausalValue;
}

/** The operations a JSON causal model can name; each reads its parents' values in order. */
export const CAUSAL_OPS: Record<string, CausalOp> = {
  identity: { arity: 1, fn: (a) => a },
  not: { arity: 1, fn: (a) => !a },
  and: { arity: 'any', fn: (...v) => v.every(Boolean) },
  or: { arity: 'any', fn: (...v) => v.some(Boolean) },
  xor: { arity: 2, fn: (a, b) => Boolean(a) !== Boolean(b) },
  eq: { arity: 2, fn: (a, b) => a === b },
  ne: { arity: 2, fn: (a, b) => a !== b },
  lt: { arity: 2, fn: (a, b) => Number(a) < Number(b) },
  le: { arity: 2, fn: (a, b) => Number(a) <= Number(b) },
  gt: { arity: 2, fn: (a, b) => Number(a) > Number(b) },
  ge: { arity: 2, fn: (a, b) => Number(a) >= Number(b) },
  add: { arity: 'any', fn: (...v) => v.reduce<number>((s, x) => s + Number(x), 0) },
  sub: { arity: 2, fn: (a, b) => Number(a) - Number(b) },
  mul: { arity: 'any', fn: (...v) => v.reduce<number>((s, x) => s * Number(x), 1) },
  mod: { arity: 2, fn: (a, b) => ((Number(a) % Number(b)) + Number(b)) % Number(b) },
  min: { arity: 'any', fn: (...v) => Math.min(...v.map(Number)) },
  max: { arity: 'any', fn: (...v) => Math.max(...v.map(Number)) },
  /** if(c, a, b): a when c holds, else b. */
  if: { arity: 3, fn: (c, a, b) => (c ? a : b) },
  /** between(x, lo, hi): lo <= x <= hi. */
  between: { arity: 3, fn: (x, lo, hi) => Number(lo) <= Number(x) && Number(x) <= Number(hi) },
  /** other(x, a, b): whichever of a, b is not x (b when neither is). */
  other: { arity: 3, fn: (x, a, b) => (x === b ? a : b) },
};

/** A causal model in JSON: `{"inputs": [...], "variables": {"v": {"parents": [...], "op": "and"}}, "output": "v"}`. */
export interface CausalModelJson {
  inputs: string[];
  variables: Record<string, { parents: string[]; op: string }>;
  output: string;
}

/** Builds a {@link CausalModel} from its JSON description; a LanternError names what is wrong. */
export function causalModelFromJson(json: unknown): CausalModel {
  const j = json as Partial<CausalModelJson> | null;
  if (!j || typeof j !== 'object') throw new LanternError('causal model JSON must be an object with inputs, variables and output');
  if (!Array.isArray(j.inputs) || !j.inputs.every((s) => typeof s === 'string')) throw new LanternError('causal model JSON: "inputs" must be a list of variable names');
  if (!j.variables || typeof j.variables !== 'object') throw new LanternError('causal model JSON: "variables" must map names to {"parents": [...], "op": ...}');
  if (typeof j.output !== 'string') throw new LanternError('causal model JSON: "output" must name a variable');
  const variables: Record<string, CausalVariable> = {};
  for (const [name, v] of Object.entries(j.variables)) {
    if (!v || !Array.isArray(v.parents)) throw new LanternError(`causal model JSON: variable '${name}' needs "parents", a list of names`);
    const op = CAUSAL_OPS[v.op];
    if (!op) throw new LanternError(`causal model JSON: variable '${name}' has unknown op '${v.op}'${hint(String(v.op), Object.keys(CAUSAL_OPS))}; ops: ${Object.keys(CAUSAL_OPS).join(', ')}`);
    if (op.arity !== 'any' && op.arity !== v.parents.length) throw new LanternError(`causal model JSON: op '${v.op}' of variable '${name}' takes ${op.arity} parent(s), got ${v.parents.length}`);
    variables[name] = { parents: v.parents, compute: op.fn };
  }
  return new CausalModel({ inputs: j.inputs, variables, output: j.output });
}
