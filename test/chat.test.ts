import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { LanternError } from '../src/errors.js';
import { chatPrompt, type ChatMessage } from '../src/models/chat.js';
import { Tokenizer } from '../src/models/tokenizer.js';

const ROOT = path.join(import.meta.dirname, '..', 'fixtures', 'chat');

interface Case {
  family: string;
  case: string;
  messages: ChatMessage[];
  addGenerationPrompt: boolean;
  variables: Record<string, unknown>;
  text?: string;
  tokens?: number[];
  error?: string;
}
// Texts from Python's jinja2, ids from transformers.js's tokenizer (scripts/reference/chat_*).
const CASES: Case[] = JSON.parse(fs.readFileSync(path.join(ROOT, 'expected.json'), 'utf8'));
const tokenizer = (family: string) => Tokenizer.fromFolder(path.join(ROOT, family));

describe('chatPrompt on the templates of real model families', () => {
  it('covers Llama 3, Qwen 2.5, Gemma 2 and Phi-3', () => {
    expect(new Set(CASES.map((c) => c.family))).toEqual(new Set(['llama3', 'llama3.2', 'qwen2.5', 'gemma2', 'phi3']));
  });

  for (const c of CASES) {
    it(`${c.family}: ${c.case}`, () => {
      const tok = tokenizer(c.family);
      const opts = { addGenerationPrompt: c.addGenerationPrompt, variables: c.variables };
      if (c.error !== undefined) {
        expect(() => chatPrompt(tok, c.messages, opts)).toThrow(new LanternError(`the chat template (default) refused the messages: ${c.error}`));
        return;
      }
      const chat = chatPrompt(tok, c.messages, opts);
      expect(chat.text).toBe(c.text);
      expect(chat.tokens).toEqual(c.tokens);
      // Each message's tokens decode to its words (templates may trim them; a sentencepiece
      // tokenizer's leading ▁ decodes to nothing at the start).
      for (const span of chat.spans) {
        const words = c.messages[span.message].content.trim();
        expect(tok.decode(chat.tokens.slice(span.start, span.end)).trim()).toBe(words);
        expect(chat.text.slice(span.charStart, span.charEnd).trim()).toBe(words);
      }
      const userSpans = chat.spans.filter((s) => s.role === 'user');
      expect(userSpans.length).toBe(c.messages.filter((m) => m.role === 'user').length);
      expect(chat.userPositions).toEqual(userSpans.flatMap((s) => Array.from({ length: s.end - s.start }, (_, i) => s.start + i)));
      // No special token of the template is counted as the user's.
      const special = tok.specialIds();
      expect(chat.userPositions.filter((p) => special.has(chat.tokens[p]))).toEqual([]);
    });
  }
});

describe('chatPrompt', () => {
  it("finds a message's words where the template puts them, not where the same words occur in the template", () => {
    // Qwen's header is "<|im_start|>user\n"; a user message "user" must be the second one.
    const chat = chatPrompt(tokenizer('qwen2.5'), [{ role: 'user', content: 'user' }]);
    const header = chat.text.indexOf('<|im_start|>user\n') + '<|im_start|>user\n'.length;
    expect(chat.spans).toEqual([expect.objectContaining({ role: 'user', charStart: header, charEnd: header + 4 })]);
    expect(chat.userPositions).toHaveLength(1);
    expect(tokenizer('qwen2.5').decode([chat.tokens[chat.userPositions[0]]])).toBe('user');
  });

  it('takes a template as text or by name, and explains a model without one', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lantern-chat-'));
    try {
      fs.copyFileSync(path.join(ROOT, 'llama3', 'tokenizer.json'), path.join(dir, 'tokenizer.json'));
      fs.writeFileSync(path.join(dir, 'tokenizer_config.json'), JSON.stringify({ bos_token: '<|begin_of_text|>' }));
      const bare = Tokenizer.fromFolder(dir);
      const messages = [{ role: 'user', content: 'Hi' }];
      expect(() => chatPrompt(bare, messages)).toThrow(/has no chat template .*give one/);
      const given = chatPrompt(bare, messages, { template: '{{ bos_token }}{% for m in messages %}[{{ m.role }}] {{ m.content }}\n{% endfor %}' });
      expect(given.text).toBe('<|begin_of_text|>[user] Hi\n');
      expect(given.template).toBe('given');

      fs.writeFileSync(path.join(dir, 'tokenizer_config.json'), JSON.stringify({ chat_template: [{ name: 'default', template: 'D:{{ messages[0].content }}' }, { name: 'tool_use', template: 'T:{{ messages[0].content }}' }] }));
      const named = Tokenizer.fromFolder(dir);
      expect(chatPrompt(named, messages).text).toBe('D:Hi');
      expect(chatPrompt(named, messages, { template: 'tool_use' }).text).toBe('T:Hi');
      expect(() => chatPrompt(named, messages, { template: 'tools' })).toThrow('chat template "tools" is neither Jinja text nor one of the tokenizer\'s templates (default, tool_use)');

      // transformers now saves the template as chat_template.jinja, which wins over the config.
      fs.writeFileSync(path.join(dir, 'chat_template.jinja'), 'J:{{ messages[0].content }}{% if add_generation_prompt %}>{% endif %}');
      expect(chatPrompt(Tokenizer.fromFolder(dir), messages).text).toBe('J:Hi>');
      expect(chatPrompt(Tokenizer.fromFolder(dir), messages, { addGenerationPrompt: false }).text).toBe('J:Hi');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("finds the user's words when the template rewrites another turn, and refuses when it rewrites the user's", () => {
    const tok = tokenizer('qwen2.5');
    // As Qwen 3 keeps only the answer of an earlier reply that reasoned first.
    const template = "{% for m in messages %}<|im_start|>{{ m.role }}\n{% if m.role == 'assistant' %}{{ m.content.split('</think>')[-1] }}{% else %}{{ m.content }}{% endif %}<|im_end|>\n{% endfor %}";
    const chat = chatPrompt(tok, [
      { role: 'user', content: 'Capital of Peru?' },
      { role: 'assistant', content: '<think>Peru, so Lima</think>Lima.' },
      { role: 'user', content: 'And of Chile?' },
    ], { template });
    expect(chat.text).toBe('<|im_start|>user\nCapital of Peru?<|im_end|>\n<|im_start|>assistant\nLima.<|im_end|>\n<|im_start|>user\nAnd of Chile?<|im_end|>\n');
    expect(chat.spans.map((s) => [s.role, chat.text.slice(s.charStart, s.charEnd)])).toEqual([['user', 'Capital of Peru?'], ['user', 'And of Chile?']]);
    expect(() => chatPrompt(tok, [{ role: 'user', content: 'hi' }], { template: '{{ messages[0].content | upper }}' }))
      .toThrow('the chat template changes message 0 (user) beyond trimming it');
  });

  it('rejects malformed messages with one clear error', () => {
    const tok = tokenizer('llama3');
    expect(() => chatPrompt(tok, [])).toThrow('messages must be a non-empty list of {role, content}');
    expect(() => chatPrompt(tok, [{ role: 'user' } as ChatMessage])).toThrow('messages[0] must be {role: string, content: string}');
  });
});
