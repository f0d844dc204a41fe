/**
 * Files and texts a user hands Lantern, for the fuzzer: labelled datasets (.jsonl, .csv,
 * .parquet) with hostile column choices, chat templates and messages (the real Llama 3, Qwen 2.5,
 * Gemma 2 and Phi-3 templates, mutated), and llama.cpp control vectors baked into a GGUF model
 * (the vector file mutated, the strength extreme). Each is mutated byte- or text-wise from a valid
 * one. The oracle: a result that holds up (examples with text and finite labels; chat tokens in
 * the vocabulary; a steered copy that parses, changes only ffn_down's biases, by finite amounts),
 * or one clean LanternError.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { LanternError } from '../../errors.js';
import { loadContrastPairs, loadLabelled } from '../../methods/representations/data.js';
import { chatPrompt, type ChatMessage } from '../../models/chat.js';
import { Tokenizer } from '../../models/tokenizer.js';
import { writeControlVector } from '../../backends/control-vector.js';
import { steeredGgufCopy } from '../../backends/gguf-steer.js';
import { checkGgufBuffer } from '../../backends/gguf-check.js';
import { exportGguf } from '../../backends/gguf-export.js';
import { TINY_GPT2, writeRandomModel } from '../../models/random.js';
import { Rng } from '../../rng.js';
import { cleanMessage, FuzzKind, Verdict } from './harness.js';

/** A change to a file's bytes (positions are fractions of its length, so one mutation fits any file). */
type ByteMutation =
  | { t: 'byte'; at: number; val: number }
  | { t: 'insert'; at: number; text: string }
  | { t: 'delete'; at: number; n: number }
  | { t: 'truncate'; at: number };

function mutateBytes(base: Buffer, muts: ByteMutation[]): Buffer {
  let b = Buffer.from(base);
  for (const m of muts) {
    const pos = Math.min(b.length, Math.floor(m.at * b.length));
    if (m.t === 'byte') { if (pos < b.length) b[pos] = m.val; }
    else if (m.t === 'insert') b = Buffer.concat([b.subarray(0, pos), Buffer.from(m.text, 'utf8'), b.subarray(pos)]);
    else if (m.t === 'delete') b = Buffer.concat([b.subarray(0, pos), b.subarray(pos + m.n)]);
    else b = b.subarray(0, pos);
  }
  return b;
}

const oddText = fc.oneof(
  fc.string({ maxLength: 12 }),
  fc.constantFrom('', '"', '""', ',', '\n', '\r\n', '\\', '{', '}', '[', '\u0000', '\ud800', '🥐', 'null', 'NaN', '1e999', '-0', 'true', '__proto__', 'constructor', '"a,b"', ',,,\n,,', 'x'.repeat(3000)),
);

function byteMutation(fractionOf: 'any' | 'header' = 'any'): fc.Arbitrary<ByteMutation> {
  const at = fc.double({ min: 0, max: fractionOf === 'header' ? 0.5 : 1, noNaN: true, maxExcluded: true });
  return fc.oneof(
    fc.record({ t: fc.constant('byte' as const), at, val: fc.nat({ max: 255 }) }),
    fc.record({ t: fc.constant('insert' as const), at, text: oddText }),
    fc.record({ t: fc.constant('delete' as const), at, n: fc.integer({ min: 1, max: 40 }) }),
    fc.record({ t: fc.constant('truncate' as const), at }),
  );
}

/** The refusal rule every kind shares: a LanternError with a clean one-line message. */
function refusal(e: unknown): Verdict {
  if (!(e instanceof LanternError)) throw e;
  const bad = cleanMessage(e.message);
  return bad ? { outcome: 'refused', violation: bad } : { outcome: 'refused' };
}

// -------------------------------------------------------------------------------------------------
// Labelled datasets

interface DatasetInput {
  format: 'jsonl' | 'csv' | 'parquet';
  muts: ByteMutation[];
  pairs: boolean;
  columns: { text?: string; label?: string; split?: string };
}

const ROWS = [
  { text: 'Paris is in France.', label: 1, split: 'train', positive: 'Paris is in France. True', negative: 'Paris is in France. False' },
  { text: 'Paris is in Peru.', label: 0, split: 'test', positive: 'Paris is in Peru. True', negative: 'Paris is in Peru. False' },
  { text: 'Lima, "the capital", is in Peru.', label: 1, split: 'train', positive: 'Lima is in Peru. True', negative: 'Lima is in Peru. False' },
  { text: 'Tokyo is in Chile.', label: 0, split: 'test', positive: 'Tokyo is in Chile. True', negative: 'Tokyo is in Chile. False' },
];
const COLUMNS = Object.keys(ROWS[0]) as (keyof (typeof ROWS)[0])[];

export function datasetKind(): FuzzKind<DatasetInput> {
  let dir = '';
  const bases = new Map<DatasetInput['format'], Buffer>();
  const column = fc.oneof({ weight: 6, arbitrary: fc.constant(undefined) }, { weight: 2, arbitrary: fc.constantFrom(...COLUMNS) }, { weight: 1, arbitrary: oddText });
  return {
    name: 'dataset files',
    async setup() {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lantern-fuzz-data-'));
      bases.set('jsonl', Buffer.from(ROWS.map((r) => JSON.stringify(r)).join('\n') + '\n'));
      const csvCell = (v: unknown) => (/[",\n]/.test(String(v)) ? `"${String(v).replace(/"/g, '""')}"` : String(v));
      bases.set('csv', Buffer.from([COLUMNS.join(','), ...ROWS.map((r) => COLUMNS.map((c) => csvCell(r[c])).join(','))].join('\n') + '\n'));
      bases.set('parquet', Buffer.from(parquetWriteBuffer({ columnData: COLUMNS.map((c) => ({ name: c, data: ROWS.map((r) => (c === 'label' ? String(r[c]) : r[c])) })) })));
    },
    arbitrary: () => fc.record({
      format: fc.constantFrom('jsonl' as const, 'csv' as const, 'parquet' as const),
      muts: fc.array(byteMutation(), { maxLength: 3 }),
      pairs: fc.boolean(),
      columns: fc.record({ text: column, label: column, split: column }),
    }),
    async oracle({ format, muts, pairs, columns }) {
      const file = path.join(dir, `data.${format}`);
      fs.writeFileSync(file, mutateBytes(bases.get(format)!, muts));
      try {
        if (pairs) {
          const items = await loadContrastPairs(file, { positiveColumn: columns.text === undefined ? undefined : 'positive', negativeColumn: 'negative', labelColumn: columns.label, splitColumn: columns.split });
          const text = (x: unknown) => typeof x === 'string' && x !== '';
          const bad = items.findIndex((p) => !text(p.positive) || !text(p.negative) || !Number.isFinite(p.label));
          return bad >= 0 ? { outcome: 'bad pair', violation: `pair ${bad} was accepted as ${JSON.stringify(items[bad]).slice(0, 200)}` } : { outcome: 'accepted' };
        }
        const { examples } = await loadLabelled(file, { textColumn: columns.text, labelColumn: columns.label, splitColumn: columns.split });
        const bad = examples.findIndex((e) => typeof e.text !== 'string' || e.text === '' || !Number.isFinite(e.label) || (e.split !== undefined && e.split !== 'train' && e.split !== 'test'));
        if (examples.length === 0) return { outcome: 'empty', violation: 'a dataset with no examples was accepted' };
        return bad >= 0 ? { outcome: 'bad example', violation: `example ${bad} was accepted as ${JSON.stringify(examples[bad]).slice(0, 200)}` } : { outcome: 'accepted' };
      } catch (e) {
        return refusal(e);
      }
    },
    async teardown() {
      if (dir) fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

// -------------------------------------------------------------------------------------------------
// Chat templates and messages

const FAMILIES = ['llama3', 'qwen2.5', 'gemma2', 'phi3'];
const CHAT_FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'fixtures', 'chat');

interface ChatInput {
  family: string;
  /** Mutations of the family's own template text; none: the model's template is used as it is. */
  templateMuts: { at: number; text: string; cut: number }[];
  messages: unknown;
  addGenerationPrompt: boolean;
}

/** Jinja fragments a hostile or broken template holds (none loops without end: templates run unbounded, like transformers'). */
const JINJA = fc.constantFrom('{{', '}}', '{%', '%}', '{% endif %}', '{% endfor %}', '{% if messages %}', '{{ messages[7].content }}', '{{ messages[0].nope.deeper }}', '{{ raise_exception("no system role") }}',
  '{{ 1 / 0 }}', '{{ undefined_name }}', '{{ messages | length }}', '{% set x = messages[0]["role"] %}', "{{ bos_token ~ '\n' }}", '{#', '#}', '{{ "\\u0000" }}', '{% for m in messages %}{{ m }}{% endfor %}', '{{ messages[0].content[::-1] }}');

export function chatTemplateKind(): FuzzKind<ChatInput> {
  const tokenizers = new Map<string, Tokenizer>();
  const message = fc.oneof(
    { weight: 6, arbitrary: fc.record({ role: fc.constantFrom('system', 'user', 'assistant', 'tool', '', 'User', 'ipython'), content: oddText }) },
    { weight: 1, arbitrary: fc.constantFrom(null, 'hi', 3, [], { role: 'user' }, { role: 'user', content: 5 }, { role: 1, content: 'x' }) },
  );
  return {
    name: 'chat templates',
    async setup() {
      for (const f of FAMILIES) tokenizers.set(f, Tokenizer.fromFolder(path.join(CHAT_FIXTURES, f)));
    },
    arbitrary: () => fc.record({
      family: fc.constantFrom(...FAMILIES),
      templateMuts: fc.array(fc.record({ at: fc.double({ min: 0, max: 1, noNaN: true }), text: fc.oneof(JINJA, oddText), cut: fc.nat({ max: 30 }) }), { maxLength: 2 }),
      messages: fc.oneof(
        { weight: 8, arbitrary: fc.array(message, { minLength: 0, maxLength: 5 }) },
        { weight: 1, arbitrary: fc.constantFrom(null, 'Hello', {}, 7) },
      ),
      addGenerationPrompt: fc.boolean(),
    }),
    async oracle({ family, templateMuts, messages, addGenerationPrompt }) {
      const tokenizer = tokenizers.get(family)!;
      let template: string | undefined;
      if (templateMuts.length) {
        template = Object.values(tokenizer.chatTemplates ?? {})[0] ?? '';
        for (const m of templateMuts) {
          const pos = Math.floor(m.at * template.length);
          template = template.slice(0, pos) + m.text + template.slice(pos + m.cut);
        }
      }
      try {
        const r = chatPrompt(tokenizer, messages as ChatMessage[], { template, addGenerationPrompt });
        const bad = r.tokens.findIndex((t) => !Number.isInteger(t) || tokenizer.idToToken(t) === undefined);
        if (bad >= 0) return { outcome: 'bad token', violation: `token ${r.tokens[bad]} at ${bad} is outside the vocabulary` };
        const span = r.spans.find((s) => !(s.start >= 0 && s.start <= s.end && s.end <= r.tokens.length));
        if (span) return { outcome: 'bad span', violation: `message ${span.message}'s span [${span.start}, ${span.end}) is outside the ${r.tokens.length} tokens` };
        return { outcome: 'rendered' };
      } catch (e) {
        return refusal(e);
      }
    },
  };
}

// -------------------------------------------------------------------------------------------------
// Control vectors baked into a GGUF model

interface SteerInput {
  muts: ByteMutation[];
  strength: number;
}

export function controlVectorKind(): FuzzKind<SteerInput> {
  let dir = '';
  let model = '';
  let modelBytes = Buffer.alloc(0);
  let vector = Buffer.alloc(0);
  return {
    name: 'control vectors',
    async setup() {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lantern-fuzz-cv-'));
      const cfg = { ...TINY_GPT2, nLayers: 4 };
      writeRandomModel(path.join(dir, 'tiny'), cfg);
      model = path.join(dir, 'tiny.gguf');
      exportGguf(path.join(dir, 'tiny'), model, { dtype: 'f32' });
      modelBytes = fs.readFileSync(model);
      const rng = new Rng(3);
      const directions = new Map([1, 3].map((l) => [l, Float32Array.from({ length: cfg.dModel }, () => rng.normal())]));
      writeControlVector(path.join(dir, 'base.gguf'), { modelHint: 'gpt2', directions });
      vector = fs.readFileSync(path.join(dir, 'base.gguf'));
    },
    arbitrary: () => fc.record({
      // Most of a control vector is its header; the rest, its directions' floats.
      muts: fc.array(byteMutation('header'), { maxLength: 3 }),
      strength: fc.constantFrom(1, -2, 0, 0.5, 1e30, 3e38, -1e38, NaN, Infinity),
    }),
    async oracle({ muts, strength }) {
      const file = path.join(dir, 'cv.gguf');
      fs.writeFileSync(file, mutateBytes(vector, muts));
      const cache = path.join(dir, 'steered');
      let out: string;
      try {
        out = steeredGgufCopy(model, checkGgufBuffer(modelBytes, model), [{ path: file, strength }], cache);
      } catch (e) {
        fs.rmSync(cache, { recursive: true, force: true });
        return refusal(e);
      }
      try {
        const steered = fs.readFileSync(out);
        const info = checkGgufBuffer(steered, 'the steered copy');
        const before = checkGgufBuffer(modelBytes, model);
        const data = (buf: Buffer, i: typeof info, name: string) => {
          const t = i.tensors.find((x) => x.name === name);
          return t && buf.subarray(i.dataOffset + t.offset, i.dataOffset + t.offset + t.bytes);
        };
        for (const t of info.tensors) {
          const now = data(steered, info, t.name)!;
          if (/^blk\.\d+\.ffn_down\.bias$/.test(t.name)) {
            const f = new Float32Array(now.buffer.slice(now.byteOffset, now.byteOffset + now.length));
            const bad = f.findIndex((x) => !Number.isFinite(x));
            if (bad >= 0) return { outcome: 'non-finite', violation: `the steered copy's ${t.name} holds ${f[bad]} at ${bad} (strength ${strength})` };
          } else if (!now.equals(data(modelBytes, before, t.name) ?? Buffer.alloc(0))) {
            return { outcome: 'changed', violation: `the steered copy changed ${t.name}, which steering never touches` };
          }
        }
        return { outcome: 'steered' };
      } finally {
        fs.rmSync(cache, { recursive: true, force: true });
      }
    },
    async teardown() {
      if (dir) fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
