/**
 * An alignment task as JSON, for the command line and the Workbench: the causal model, how an input
 * becomes a prompt, which token answers each output value, and the inputs to draw pairs from.
 *
 *   {
 *     "causalModel": { "inputs": ["x", "a", "b"], "variables": { ... }, "output": "inside" },
 *     "prompt": "{x} in [{a}, {b}]?",          // text with {variable} slots, tokenized by the model
 *     "promptTokens": [2215, "{a}", 290, "{b}"], // or token ids, with "{variable}" for a token-id input
 *     "answers": { "true": " yes", "false": " no" },  // output value -> answer text (one token);
 *                                                      // without it the value is the answer (text or token id)
 *     "inputs": [ { "x": 3, "a": 1, "b": 5 }, ... ]
 *   }
 */
import { LanternError } from '../../errors.js';
import type { HookedTransformer } from '../../models/hooked.js';
import { CausalInput, CausalModelJson, CausalValue, causalModelFromJson } from './causal-model.js';
import type { AlignmentTask } from './iia.js';

/** The JSON form of an alignment task (see the module comment). */
export interface AlignmentTaskJson {
  causalModel: CausalModelJson;
  prompt?: string;
  promptTokens?: (number | string)[];
  answers?: Record<string, string | number>;
  inputs: CausalInput[];
}

/** Builds an alignment task and its input pool from JSON, checking every input's prompt and answer against `model`. */
export function alignmentTaskFromJson(model: HookedTransformer, json: unknown): { task: AlignmentTask; inputs: CausalInput[] } {
  const j = json as Partial<AlignmentTaskJson> | null;
  if (!j || typeof j !== 'object') throw new LanternError('task JSON must be an object with causalModel, prompt (or promptTokens) and inputs');
  const causalModel = causalModelFromJson(j.causalModel);
  if ((j.prompt === undefined) === (j.promptTokens === undefined)) throw new LanternError('task JSON: give exactly one of "prompt" (text with {variable} slots) and "promptTokens"');
  if (!Array.isArray(j.inputs) || j.inputs.length < 2) throw new LanternError('task JSON: "inputs" must list at least two inputs');
  const slot = (name: string, input: CausalInput) => {
    if (!(name in input)) throw new LanternError(`task JSON: the prompt has a slot {${name}} but an input has no '${name}'`);
    return input[name];
  };
  const tokens = j.prompt !== undefined
    ? (input: CausalInput) => model.toTokens(j.prompt!.replace(/\{(\w+)\}/g, (_, name: string) => String(slot(name, input))))
    : (input: CausalInput) => j.promptTokens!.map((t) => {
      const m = typeof t === 'string' ? /^\{(\w+)\}$/.exec(t) : null;
      const id = m ? Number(slot(m[1], input)) : t;
      if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id >= model.cfg.dVocab) throw new LanternError(`task JSON: prompt token ${JSON.stringify(t)} is not a token id in [0, ${model.cfg.dVocab}) or a {variable} slot holding one`);
      return id;
    });
  const oneToken = (text: string) => {
    const ids = model.encode(text);
    if (ids.length !== 1) throw new LanternError(`task JSON: answer ${JSON.stringify(text)} is ${ids.length} tokens, not one`);
    return ids[0];
  };
  const answer = (v: CausalValue) => {
    const a = j.answers ? j.answers[String(v)] : v;
    if (a === undefined) throw new LanternError(`task JSON: no answer for output value ${JSON.stringify(v)} in "answers" (has ${Object.keys(j.answers!).join(', ')})`);
    if (typeof a === 'number') {
      if (!Number.isInteger(a) || a < 0 || a >= model.cfg.dVocab) throw new LanternError(`task JSON: answer token ${a} outside the vocabulary`);
      return a;
    }
    return oneToken(String(a));
  };
  const task: AlignmentTask = { causalModel, tokens, answer };
  j.inputs.forEach((input, i) => {
    if (!input || typeof input !== 'object') throw new LanternError(`task JSON: input ${i} is not an object`);
    tokens(input);
    answer(causalModel.output(input));
  });
  return { task, inputs: j.inputs };
}
