// BOS handling as Hugging Face's tokenizers do it, from real tokenizer_config.json files
// (fixtures/tokenizers): Gemma 3 names <bos> and sets add_bos_token; Qwen 3 sets it false with no
// BOS; a Llama 3 tokenizer.json whose post-processor template puts <|begin_of_text|> first adds it
// with no add_bos_token at all; GPT-2 adds nothing. Prompts get the BOS, continuations never.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Tokenizer } from '../src/models/tokenizer.js';
import { truncatedGpt2Tokenizer, writeRandomModel } from '../src/models/random.js';
import { architectureFor } from '../src/models/architectures/index.js';
import { loadModel } from '../src/models/load.js';
import { attribute } from '../src/methods/attribution/index.js';
import { causalTrace } from '../src/methods/patching/causal-tracing.js';
import type { HookedTransformer } from '../src/models/hooked.js';

const FIX = path.join(__dirname, '..', 'fixtures', 'tokenizers');
let tmp: string;
beforeAll(() => (tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lantern-bos-'))));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** The truncated GPT-2 tokenizer with `special` as an added special token at `id` (taking that id's place). */
function withSpecial(special: string, id: number, postProcessor?: object): object {
  const t = truncatedGpt2Tokenizer(1000) as any;
  const old = Object.entries(t.model.vocab as Record<string, number>).find(([, i]) => i === id)![0];
  const vocab = { ...t.model.vocab };
  delete vocab[old];
  vocab[special] = id;
  return {
    ...t,
    model: { ...t.model, vocab, merges: (t.model.merges as string[]).filter((m) => !m.split(' ').includes(old) && m.replace(' ', '') !== old) },
    added_tokens: [{ id, content: special, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }],
    ...(postProcessor ? { post_processor: postProcessor } : {}),
  };
}

function folder(name: string, tokenizer: object, config?: string): string {
  const dir = path.join(tmp, name);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify(tokenizer));
  if (config) fs.copyFileSync(path.join(FIX, config), path.join(dir, 'tokenizer_config.json'));
  return dir;
}

const llama3Template = (bos: number) => ({
  type: 'Sequence',
  processors: [
    { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true },
    {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<|begin_of_text|>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [{ SpecialToken: { id: '<|begin_of_text|>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '<|begin_of_text|>', type_id: 1 } }, { Sequence: { id: 'B', type_id: 1 } }],
      special_tokens: { '<|begin_of_text|>': { id: '<|begin_of_text|>', ids: [bos], tokens: ['<|begin_of_text|>'] } },
    },
  ],
});

describe('BOS from tokenizer_config.json and the post-processor', () => {
  it('Gemma 3 (add_bos_token: true, <bos>), Qwen 3 (add_bos_token: false), Llama 3 (template), GPT-2 (none)', () => {
    const gemma = Tokenizer.fromFolder(folder('gemma3', withSpecial('<bos>', 2), 'gemma3-tokenizer_config.json'));
    expect(gemma.bos).toEqual({ id: 2, token: '<bos>' });
    const qwen = Tokenizer.fromFolder(folder('qwen3', withSpecial('<|endoftext|>', 999), 'qwen3-tokenizer_config.json'));
    expect(qwen.bos).toBeUndefined();
    const llama = Tokenizer.fromFolder(folder('llama3', withSpecial('<|begin_of_text|>', 998, llama3Template(998)), 'llama3-tokenizer_config.json'));
    expect(llama.bos).toEqual({ id: 998, token: '<|begin_of_text|>' });
    // The same Llama 3 config with the plain ByteLevel post-processor of some published copies: no BOS.
    const plain = Tokenizer.fromFolder(folder('llama3-plain', withSpecial('<|begin_of_text|>', 998), 'llama3-tokenizer_config.json'));
    expect(plain.bos).toBeUndefined();
    expect(Tokenizer.fromFolder(folder('gpt2', truncatedGpt2Tokenizer(1000))).bos).toBeUndefined();
  });

  it('a named BOS that is not in the vocabulary is a one-line error', () => {
    const dir = folder('gemma-missing', truncatedGpt2Tokenizer(1000), 'gemma3-tokenizer_config.json');
    expect(() => Tokenizer.fromFolder(dir)).toThrow(/tokenizer_config\.json: bos_token "<bos>" is not in the vocabulary$/);
  });
});

describe('a model whose tokenizer adds a BOS', () => {
  let model: HookedTransformer;
  beforeAll(async () => {
    const dir = path.join(tmp, 'llama-model');
    writeRandomModel(dir, architectureFor('llama').presets.tiny, { seed: 2 });
    fs.writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify(withSpecial('<|begin_of_text|>', 998, llama3Template(998))));
    model = await loadModel(dir);
  });
  afterAll(async () => model && (await model.executor.dropWeights(model.weights)));

  it('prompts begin with it; targets and continuations do not; attribution leaves it out as a special token', async () => {
    const ids = model.toTokens('the cat sat');
    expect(ids[0]).toBe(998);
    expect(ids.slice(1)).toEqual(model.encode('the cat sat'));
    expect(model.toTokens('the cat', { prependBos: false })).toEqual(model.encode('the cat'));
    const r = await attribute(model, { text: 'the cat sat on the', target: ' the', method: 'saliency' });
    expect(r.target.token).toBe(model.encode(' the')[0]);
    expect(r.skippedSpecial).toEqual([{ position: 0, token: 998, string: '<|begin_of_text|>' }]);
    expect(r.tokens).toEqual(model.encode('the cat sat on the'));
  });

  it("causal tracing's subject positions count the BOS", async () => {
    const t = await causalTrace(model, { prompt: 'the cat sat on the', answer: ' the', subject: 'the cat', samples: 2, kinds: ['resid'] });
    const n = model.encode('the cat').length;
    expect(t.subjectPositions).toEqual(Array.from({ length: n }, (_, i) => 1 + i));
    expect(t.tokens[0]).toBe(998);
  });
});
