// Streaming on the OpenAI-compatible server (src/interfaces/server/openai-compat.ts), read by the
// official `openai` client: the streamed chunks of /v1/completions and /v1/chat/completions
// concatenate to exactly the text of the same request without streaming (same seed), for sampled
// and greedy generation, batches and stop strings.
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serveOpenAI, RunningServer } from '../src/interfaces/server/openai-compat.js';
import type { HookedTransformer } from '../src/models/hooked.js';
import { loadModel } from '../src/models/load.js';
import { BUNDLED_MODEL } from '../src/paths.js';

let model: HookedTransformer;
let srv: RunningServer;
let client: OpenAI;
const ID = 'lantern-demo';

beforeAll(async () => {
  model = await loadModel(BUNDLED_MODEL);
  srv = await serveOpenAI(model, { id: ID });
  client = new OpenAI({ baseURL: srv.baseURL, apiKey: 'not-checked', maxRetries: 0 });
});
afterAll(async () => {
  await srv?.close();
});

describe('stream: true through the official openai client', () => {
  it('completions: the chunks of a batch concatenate per prompt to the unstreamed text, with the same finish reasons and usage', async () => {
    const prompt = ['Once upon a time', 'The little dog ran to the'];
    const settings = { model: ID, prompt, max_tokens: 20, temperature: 1, top_p: 0.9, seed: 1234 };
    const whole = await client.completions.create(settings);
    const texts = ['', ''];
    const finish: (string | null)[] = [null, null];
    let usage;
    for await (const chunk of await client.completions.create({ ...settings, stream: true, stream_options: { include_usage: true } })) {
      for (const c of chunk.choices) {
        texts[c.index] += c.text;
        if (c.finish_reason) finish[c.index] = c.finish_reason;
      }
      if (chunk.usage) usage = chunk.usage;
    }
    expect(texts).toEqual(whole.choices.map((c) => c.text));
    expect(texts[0].length).toBeGreaterThan(0);
    expect(finish).toEqual(whole.choices.map((c) => c.finish_reason));
    expect(usage).toEqual(whole.usage);
    // Sampled, not greedy: another seed gives other text.
    const other = await client.completions.create({ ...settings, seed: 99 });
    expect(other.choices.map((c) => c.text)).not.toEqual(texts);
  });

  it('chat completions: role first, then content deltas that concatenate to the unstreamed message', async () => {
    const settings = { model: ID, messages: [{ role: 'user' as const, content: 'Tell me a story.' }], max_tokens: 24, temperature: 0.8, seed: 5 };
    const whole = await client.chat.completions.create(settings);
    const stream = await client.chat.completions.create({ ...settings, stream: true });
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);
    expect(chunks[0].choices[0].delta.role).toBe('assistant');
    expect(chunks.every((c) => c.object === 'chat.completion.chunk')).toBe(true);
    expect(chunks.map((c) => c.choices[0]?.delta.content ?? '').join('')).toBe(whole.choices[0].message.content);
    expect(chunks.at(-1)!.choices[0].finish_reason).toBe(whole.choices[0].finish_reason);
  });

  it('greedy with a stop string: the stream holds back the stop string and ends where the unstreamed text does', async () => {
    const prompt = 'He opened the door and';
    const free = await client.completions.create({ model: ID, prompt, max_tokens: 12, temperature: 0 });
    const word = free.choices[0].text.trim().split(' ')[2];
    const settings = { model: ID, prompt, max_tokens: 12, temperature: 0, stop: [word] };
    const whole = await client.completions.create(settings);
    let text = '';
    for await (const chunk of await client.completions.create({ ...settings, stream: true })) {
      text += chunk.choices[0]?.text ?? '';
      expect(text.includes(word)).toBe(false);
    }
    expect(whole.choices[0].finish_reason).toBe('stop');
    expect(text).toBe(whole.choices[0].text);
    expect(text).toBe(free.choices[0].text.slice(0, free.choices[0].text.indexOf(word)));
  });

  it('refuses what cannot be streamed with one clear 400', async () => {
    await expect(client.completions.create({ model: ID, prompt: 'x', logprobs: 1, stream: true })).rejects.toMatchObject({ status: 400, message: expect.stringMatching(/logprobs cannot be streamed/) });
    await expect(client.completions.create({ model: ID, prompt: [1, 2, 99999999], stream: true })).rejects.toMatchObject({ status: 400, message: expect.stringMatching(/outside the vocabulary/) });
  });
});
