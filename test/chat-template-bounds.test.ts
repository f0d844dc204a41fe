import fs from 'node:fs';
import path from 'node:path';
import { Template } from '@huggingface/jinja';
import { describe, expect, it } from 'vitest';
import { LanternError } from '../src/errors.js';
import { chatPrompt, type ChatMessage } from '../src/models/chat.js';
import { renderBounded, TemplateBoundsError } from '../src/models/jinja.js';
import { Tokenizer } from '../src/models/tokenizer.js';

const ROOT = path.join(import.meta.dirname, '..', 'fixtures', 'chat');
const CASES: { family: string; case: string; messages: ChatMessage[]; addGenerationPrompt: boolean; variables: Record<string, unknown>; text?: string; error?: string }[] =
  JSON.parse(fs.readFileSync(path.join(ROOT, 'expected.json'), 'utf8'));
const tokenizer = Tokenizer.fromFolder(path.join(ROOT, 'llama3'));
const messages = [{ role: 'user', content: 'Hi' }];

// Each of these ran for minutes, or exhausted memory, or crashed V8 outright, under the unbounded renderer.
const HOSTILE: [string, string, RegExp][] = [
  ['a huge range', '{% for i in range(10**9) %}x{% endfor %}', /range\(0, 1000000000, 1\) has 1000000000 items, more than the 1048576 allowed/],
  ['nested loops', '{% for i in range(10**5) %}{% for j in range(10**5) %}{% endfor %}{% endfor %}', /more than 500000 steps/],
  ['nested loops over one list', '{% set l = range(1000)|list %}{% for i in l %}{% for j in l %}{% for k in l %}{% endfor %}{% endfor %}{% endfor %}', /more than 500000 steps/],
  ['a doubling string', "{% set ns = namespace(s='ab') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}", /a string of 33554432 characters, more than the 16777216 allowed/],
  ['a doubling list', '{% set ns = namespace(l=[1]) %}{% for i in range(64) %}{% set ns.l = ns.l + ns.l %}{% endfor %}', /a list of 2097152 items, more than the 1048576 allowed/],
  ['endless recursion', '{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}', /recurses too deeply|more than 500000 steps/],
  ['a huge indent', "{{ 'a\nb'|indent(10**9) }}", /indent filter would make up to 3000000003 characters/],
  ['a squaring replace filter', "{% set ns = namespace(s='abcdefghij') %}{% for i in range(8) %}{% set ns.s = ns.s|replace('', ns.s) %}{% endfor %}", /replace filter would make up to 214358880 characters/],
  ['a squaring replace method', "{% set ns = namespace(s='abcdefghij') %}{% for i in range(8) %}{% set ns.s = ns.s.replace('', ns.s) %}{% endfor %}", /replace method would make up to 214358880 characters/],
  ['a huge join', "{% set ns = namespace(s='ab') %}{% for i in range(20) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ range(1000)|join(ns.s) }}", /join filter would make up to \d+ characters/],
];

describe('chat templates are rendered within bounds', () => {
  for (const [what, template, message] of HOSTILE) {
    it(`stops ${what} with one clear error`, () => {
      let error: unknown;
      try {
        chatPrompt(tokenizer, messages, { template });
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(LanternError);
      expect((error as Error).message).toMatch(/^the chat template \(given\) does too much work, so it was stopped: /);
      expect((error as Error).message).toMatch(message);
    });
  }

  it('has no string multiplication to bound (the library refuses it)', () => {
    expect(() => chatPrompt(tokenizer, messages, { template: "{{ 'a' * 10**9 }}" })).toThrow(/refused the messages: Unknown operator "\*" between StringValue and IntegerValue/);
  });

  it('counts each loop turn and range item as steps, and bounds lists and strings exactly', () => {
    const loop = new Template('{% for i in range(10) %}{% endfor %}');
    // One step for the program, the for statement, the range call and its callee and argument, 10 for range's items, 10 loop turns.
    expect(renderBounded(loop, {}, { steps: 25, chars: 100, items: 100 })).toBe('');
    expect(() => renderBounded(loop, {}, { steps: 24, chars: 100, items: 100 })).toThrow(TemplateBoundsError);
    const list = new Template('{{ range(n)|length }}');
    expect(renderBounded(list, { n: 100 }, { steps: 1000, chars: 100, items: 100 })).toBe('100');
    expect(() => renderBounded(list, { n: 101 }, { steps: 1000, chars: 100, items: 100 })).toThrow('range(0, 101, 1) has 101 items, more than the 100 allowed');
    const text = new Template("{{ 'x' ~ s }}");
    expect(renderBounded(text, { s: 'y'.repeat(99) }, { steps: 1000, chars: 100, items: 100 })).toHaveLength(100);
    expect(() => renderBounded(text, { s: 'y'.repeat(100) }, { steps: 1000, chars: 100, items: 100 })).toThrow('a string of 101 characters, more than the 100 allowed');
  });

  it('computes range as Python does', () => {
    const t = new Template('{{ range(a, b, c)|list }}');
    for (const [a, b, c] of [[0, 10, 3], [10, 0, -3], [5, 5, 1], [5, 0, 1], [-4, 4, 2]]) {
      const python: number[] = [];
      for (let i = a; c > 0 ? i < b : i > b; i += c) python.push(i);
      expect(renderBounded(t, { a, b, c })).toBe(`[${python.join(', ')}]`);
    }
  });

  it("renders the real families' templates exactly as the library does", () => {
    for (const c of CASES) {
      const tok = Tokenizer.fromFolder(path.join(ROOT, c.family));
      const template = new Template(tok.chatTemplates!.default);
      const variables = { ...tok.specialTokensMap, ...c.variables, messages: c.messages, add_generation_prompt: c.addGenerationPrompt };
      if (c.error !== undefined) {
        expect(() => renderBounded(template, variables)).toThrow(c.error);
        expect(() => template.render(variables)).toThrow(c.error);
      } else {
        expect(renderBounded(template, variables)).toBe(template.render(variables));
        expect(renderBounded(template, variables)).toBe(c.text);
      }
    }
    // strftime_now is the library's own.
    const today = new Template("{{ strftime_now('%Y-%m-%d') }}");
    expect(renderBounded(today, {})).toBe(today.render({}));
  });

  it('refuses a variable named like a global, as the library does, so range cannot be replaced', () => {
    const t = new Template('{{ range(3)|length }}');
    expect(() => renderBounded(t, { range: () => [] })).toThrow('Variable already declared: range');
    expect(() => t.render({ range: () => [] })).toThrow('Variable already declared: range');
  });
});
