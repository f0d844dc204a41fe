// Attribution, patching and the CLI over a chat turn: the prompt is the model's chat template
// applied to the messages, and only the user's words are attributed unless asked otherwise.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attribute, loadResult, saveResult } from '../src/methods/attribution/index.js';
import { chatPrompt } from '../src/models/chat.js';
import type { HookedTransformer } from '../src/models/hooked.js';
import { loadModel } from '../src/models/load.js';
import { TINY_GPT2, writeRandomModel } from '../src/models/random.js';
import { expectOneLineError, runLantern } from './helpers.js';
import { buildServer } from '../src/interfaces/server/app.js';
import { plainChatTemplate } from '../src/interfaces/server/openai-compat.js';

// A plain-text template (the tiny model's vocabulary is GPT-2's first 1000 tokens).
const TEMPLATE = "{% for m in messages %}### {{ m['role'] }}:\n{{ m['content'] | trim }}\n{% endfor %}{% if add_generation_prompt %}### assistant:\n{% endif %}";
const MESSAGES = [
  { role: 'system', content: 'Be brief.' },
  { role: 'user', content: 'Where is the tower?' },
];

let tmp: string;
let folder: string;
let bare: string;
let model: HookedTransformer;

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lantern-chat-attr-'));
  folder = path.join(tmp, 'chat-model');
  bare = path.join(tmp, 'bare-model');
  writeRandomModel(folder, TINY_GPT2, { seed: 5 });
  fs.writeFileSync(path.join(folder, 'tokenizer_config.json'), JSON.stringify({ chat_template: TEMPLATE, eos_token: '<|endoftext|>' }));
  writeRandomModel(bare, TINY_GPT2, { seed: 5 });
  model = await loadModel(folder, { progress: false });
});

afterAll(async () => {
  if (model) await model.executor.dropWeights(model.weights);
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('attribution over a chat turn', () => {
  it("scores only the user's words, keeping the template as context", async () => {
    const chat = chatPrompt(model, MESSAGES);
    expect(chat.text).toBe('### system:\nBe brief.\n### user:\nWhere is the tower?\n### assistant:\n');
    const r = await attribute(model, { messages: MESSAGES, method: 'saliency' });
    expect(r.tokens).toEqual(chat.userPositions.map((p) => chat.tokens[p]));
    expect(r.tokenStrings.join('')).toBe('Where is the tower?');
    expect(r.chat?.userSpans).toEqual([[chat.userPositions[0], chat.userPositions.at(-1)! + 1]]);
    expect(r.chat?.templatePositions).toEqual(chat.tokens.map((_, i) => i).filter((i) => !chat.userPositions.includes(i)));
    // Saliency at a position does not depend on which positions are features: the same prompt as
    // plain token ids gives the same numbers at the user's positions.
    const all = await attribute(model, { tokens: chat.tokens, method: 'saliency' });
    expect(r.target.token).toBe(all.target.token);
    for (const [k, p] of chat.userPositions.entries()) expect(r.scores[0][k]).toBeCloseTo(all.scores[0][p], 6);

    const everything = await attribute(model, { messages: MESSAGES, method: 'saliency', templateTokens: true });
    expect(everything.tokens).toEqual(chat.tokens);
    expect(everything.chat?.templatePositions).toEqual([]);
    expect(everything.scores[0]).toEqual(all.scores[0]);
  });

  it('keeps integrated gradients complete over the user\'s words alone', async () => {
    const r = await attribute(model, { messages: MESSAGES, method: 'ig', settings: { steps: 64 } });
    // Completeness: the user's scores sum to f(x) − f(x'), where x' blanks only the user's words.
    const delta = r.convergenceDelta![0];
    const total = r.scores[0].reduce((a, b) => a + b, 0);
    expect(Math.abs(delta)).toBeLessThan(0.05 * Math.max(1e-3, Math.abs(total)) + 1e-3);
  });

  it('saves and reloads the chat with the result, and refuses what it cannot do', async () => {
    const file = path.join(tmp, 'r.json');
    const r = await attribute(model, { messages: MESSAGES, method: 'saliency' });
    saveResult(file, r);
    expect(loadResult(file).chat).toEqual(r.chat);
    await expect(attribute(model, { messages: [{ role: 'system', content: 'Only a system turn.' }], method: 'saliency' }))
      .rejects.toThrow("the chat has no words of the user to attribute");
    await expect(attribute(model, { messages: MESSAGES, method: 'occlusion', settings: { granularity: 'word' } }))
      .rejects.toThrow("word granularity groups the template's tokens with the user's");
    await expect(attribute(model, { text: 'x', messages: MESSAGES, method: 'saliency' })).rejects.toThrow('give one of text, tokens or messages to attribute');
  });
});

describe('--chat on the command line', () => {
  it('attributes the user\'s words and runs forward on the templated prompt', async () => {
    const out = path.join(tmp, 'cli.json');
    const a = await runLantern(['attribute', '--model', folder, '--chat', '--system', 'Be brief.', '--text', 'Where is the tower?', '--method', 'saliency', '--json', out], tmp);
    expect(a.code, a.stderr).toBe(0);
    const saved = JSON.parse(fs.readFileSync(out, 'utf8'));
    const lib = await attribute(model, { messages: MESSAGES, method: 'saliency' });
    expect(saved.tokens).toEqual(lib.tokens);
    expect(saved.chat).toEqual(lib.chat);
    saved.scores[0].forEach((v: number, i: number) => expect(v).toBeCloseTo(lib.scores[0][i], 6));

    const f = await runLantern(['forward', '--model', folder, '--chat', '--system', 'Be brief.', '--text', 'Where is the tower?', '--json'], tmp);
    expect(f.code, f.stderr).toBe(0);
    const fwd = JSON.parse(f.stdout);
    expect(fwd.tokens).toEqual(chatPrompt(model, MESSAGES).tokens);
    expect(fwd.settings.chat.text).toBe(chatPrompt(model, MESSAGES).text);
  });

  it('explains a model without a template, and flags that need --chat', async () => {
    expectOneLineError(await runLantern(['forward', '--model', bare, '--chat', '--text', 'Hi'], tmp), /has no chat template .*--chat-template <file>/);
    expectOneLineError(await runLantern(['lens', '--model', folder, '--system', 'x', '--text', 'Hi'], tmp), /--system applies only with --chat/);
  });
});

describe('messages through the Workbench API and /v1/chat/completions', () => {
  it('takes messages where it takes text, and applies the model\'s template to OpenAI chats', async () => {
    const app = await buildServer({ dataDir: path.join(tmp, 'server'), model: folder, allowHub: false, openai: true });
    try {
      const post = async (url: string, payload: object) => {
        const r = await app.inject({ method: 'POST', url, payload, headers: { host: 'localhost' } });
        return { status: r.statusCode, json: r.json() };
      };
      const chat = chatPrompt(model, MESSAGES);
      const attr = await post('/api/attribution', { messages: MESSAGES, method: 'saliency' });
      expect(attr.status, JSON.stringify(attr.json)).toBe(200);
      const lib = await attribute(model, { messages: MESSAGES, method: 'saliency' });
      expect(attr.json.result.tokens).toEqual(lib.tokens);
      expect(attr.json.result.chat).toEqual(lib.chat);
      expect(attr.json.title).toBe('Where is the tower?');
      const fwd = await post('/api/forward', { messages: MESSAGES, addGenerationPrompt: false });
      expect(fwd.json.result.tokens).toEqual(chatPrompt(model, MESSAGES, { addGenerationPrompt: false }).tokens);
      expect((await post('/api/forward', { text: 'x', messages: MESSAGES })).json.error).toMatch('give text or messages, not both');
      expect((await post('/api/forward', {})).status).toBe(400);

      const served = (await app.inject({ method: 'GET', url: '/v1/models', headers: { host: 'localhost' } })).json().data[0].id;
      const c = await post('/v1/chat/completions', { model: served, messages: MESSAGES, max_tokens: 1, temperature: 0 });
      expect(c.status, JSON.stringify(c.json)).toBe(200);
      expect(c.json.usage.prompt_tokens).toBe(chat.tokens.length);
      expect(chat.tokens.length).not.toBe(model.toTokens(plainChatTemplate(MESSAGES)).length);
    } finally {
      await app.close();
    }
  });
});
