/**
 * Chat prompts: a model's chat template (tokenizer_config.json's `chat_template`, or
 * chat_template.jinja) applied to messages with `@huggingface/jinja`, as transformers'
 * `apply_chat_template` does, plus where each message's own words lie among the tokens, so that
 * methods can tell the user's words from the template's.
 *
 *   const chat = chatPrompt(model, [{ role: 'user', content: 'Where is the Eiffel Tower?' }]);
 *   chat.tokens;          // ids, exactly as transformers' apply_chat_template(..., tokenize=True)
 *   chat.userPositions;   // token positions holding the user's words
 */
import { Template } from '@huggingface/jinja';
import { LanternError } from '../errors.js';
import { renderBounded, TemplateBoundsError } from './jinja.js';
import { Tokenizer } from './tokenizer.js';

/** One turn of a conversation, as chat templates take it. */
export interface ChatMessage {
  /** Who speaks: 'system', 'user', 'assistant', or any other role the model's template knows. */
  role: string;
  /** The message's text. */
  content: string;
}

/** Options for {@link chatPrompt}: which template, its variables, and whether to open the assistant's turn. */
export interface ChatOptions {
  /** End with the header of the assistant's turn, so the next token is its reply (default true). */
  addGenerationPrompt?: boolean;
  /** A Jinja template, or the name of one of the model's named templates; default: the model's own. */
  template?: string;
  /** More template variables (e.g. `tools`, or `date_string` for Llama 3.1+ to pin the date). */
  variables?: Record<string, unknown>;
}

/** Where one message's content lies in the prompt: tokens [start, end) and characters [charStart, charEnd). */
export interface MessageSpan {
  message: number;
  role: string;
  start: number;
  end: number;
  charStart: number;
  charEnd: number;
}

/**
 * A conversation rendered by a chat template and tokenized, as {@link chatPrompt} returns it: the
 * text, its token ids, and which tokens hold each message's words.
 */
export interface ChatPrompt {
  messages: ChatMessage[];
  /** The rendered template. */
  text: string;
  /** Ids of `text`, with no special tokens added beyond those the template writes (as transformers). */
  tokens: number[];
  /** One span per message whose content appears in the prompt. */
  spans: MessageSpan[];
  /** Token positions that hold user messages' words; every other position is the template's (or another role's). */
  userPositions: number[];
  /** Which template was used: the model's (by name) or one given as text. */
  template: string;
}

/** What chatPrompt needs of a model: its tokenizer (a HookedTransformer or a Tokenizer itself). */
type TokenizerSource = Tokenizer | { tokenizer: Tokenizer | undefined; source: string };

/**
 * Checks that `messages` is a non-empty list of `{role, content}` strings and returns a clean copy
 * (extra fields dropped); throws a LanternError naming `where` and the bad entry otherwise.
 */
export function checkMessages(messages: unknown, where = 'messages'): ChatMessage[] {
  if (!Array.isArray(messages) || messages.length === 0) throw new LanternError(`${where} must be a non-empty list of {role, content}`);
  return messages.map((m, i) => {
    if (typeof m !== 'object' || m === null || typeof (m as ChatMessage).role !== 'string' || typeof (m as ChatMessage).content !== 'string') {
      throw new LanternError(`${where}[${i}] must be {role: string, content: string}`);
    }
    return { role: (m as ChatMessage).role, content: (m as ChatMessage).content };
  });
}

/** The template text to use: `template` as a name of the model's templates or as Jinja text, else the model's default. */
export function resolveChatTemplate(tokenizer: Tokenizer, template: string | undefined, owner: string): { text: string; name: string } {
  const own = tokenizer.chatTemplates ?? {};
  if (template !== undefined) {
    if (Object.hasOwn(own, template)) return { text: own[template], name: template };
    if (/\{[{%]/.test(template)) return { text: template, name: 'given' };
    const names = Object.keys(own);
    throw new LanternError(`chat template "${template}" is neither Jinja text nor one of ${owner}'s templates${names.length ? ` (${names.join(', ')})` : ' (it has none)'}`);
  }
  const names = Object.keys(own);
  if (names.length === 0) {
    throw new LanternError(`${owner} has no chat template (no chat_template in tokenizer_config.json, no chat_template.jinja); give one (template option, or --chat-template <file>)`);
  }
  if (Object.hasOwn(own, 'default')) return { text: own.default, name: 'default' };
  if (names.length === 1) return { text: own[names[0]], name: names[0] };
  throw new LanternError(`${owner} has several chat templates (${names.join(', ')}) and none is named default; choose one`);
}

/**
 * Applies a model's chat template to `messages`, as transformers' `apply_chat_template` does, and
 * tokenizes the result; also locates each message's words among the tokens (`spans`,
 * `userPositions`), so methods can read or steer just the user's words. `model` is a
 * HookedTransformer or a Tokenizer.
 */
export function chatPrompt(model: TokenizerSource, messages: ChatMessage[], opts: ChatOptions = {}): ChatPrompt {
  const { tokenizer, owner } = model instanceof Tokenizer ? { tokenizer: model, owner: 'the tokenizer' } : { tokenizer: model.tokenizer, owner: `model ${model.source}` };
  if (!tokenizer) throw new LanternError(`${owner} has no tokenizer.json, so it cannot take chat messages`);
  const checked = checkMessages(messages);
  const { text: source, name } = resolveChatTemplate(tokenizer, opts.template, owner);
  let template: Template;
  try {
    template = new Template(source);
  } catch (e) {
    throw new LanternError(`the chat template (${name}) does not parse: ${(e as Error).message}`);
  }
  const render = (msgs: ChatMessage[]): string => {
    try {
      return renderBounded(template, {
        ...tokenizer.specialTokensMap,
        ...opts.variables,
        messages: msgs,
        add_generation_prompt: opts.addGenerationPrompt ?? true,
      });
    } catch (e) {
      if (e instanceof TemplateBoundsError) throw new LanternError(`the chat template (${name}) does too much work, so it was stopped: ${e.message}`);
      // raise_exception in a template is how it refuses a conversation ("System role not supported").
      throw new LanternError(`the chat template (${name}) refused the messages: ${(e as Error).message}`);
    }
  };
  const text = render(checked);
  const tokens = tokenizer.encode(text);
  const spans = locateContents(text, checked, render).map((s) => ({ ...s, ...tokenSpan(tokenizer, text, tokens, s.charStart, s.charEnd) }));
  const userPositions = spans.filter((s) => s.role === 'user').flatMap((s) => range(s.start, s.end));
  return { messages: checked, text, tokens, spans, userPositions, template: name };
}

/**
 * Character spans of the messages' contents. The template is rendered once more with each content
 * replaced by a marker, which shows the template text between contents; the real rendering must
 * then be that text with each content (possibly trimmed, as many templates do) in between.
 * Searching for the content alone could instead find it inside the template's own words.
 */
function locateContents(text: string, messages: ChatMessage[], render: (m: ChatMessage[]) => string): Omit<MessageSpan, 'start' | 'end'>[] {
  const marker = (i: number) => `\uE000${i}\uE001`;
  const marked = render(messages.map((m, i) => ({ ...m, content: marker(i) })));
  const parts = marked.split(/\uE000(\d+)\uE001/);
  const spans: Omit<MessageSpan, 'start' | 'end'>[] = [];
  let at = 0;
  if (!text.startsWith(parts[0])) return [];
  at = parts[0].length;
  for (let k = 1; k < parts.length; k += 2) {
    const i = Number(parts[k]);
    const after = parts[k + 1];
    const c = messages[i].content;
    const variant = [c, c.trim(), c.trimStart(), c.trimEnd()].find((v) => text.startsWith(v, at) && text.startsWith(after, at + v.length));
    if (variant === undefined) {
      // Templates rewrite some turns (Qwen 3 drops an earlier reply's reasoning); only the user's words must be found.
      const resume = messages[i].role === 'user' ? -1 : text.indexOf(after, at);
      if (resume < 0) {
        throw new LanternError(`the chat template changes message ${i} (${messages[i].role}) beyond trimming it, so its words cannot be located among the tokens`);
      }
      at = resume + after.length;
      continue;
    }
    if (variant.length > 0) spans.push({ message: i, role: messages[i].role, charStart: at, charEnd: at + variant.length });
    at += variant.length + after.length;
  }
  return spans;
}

/**
 * Tokens of `tokens` (the ids of `text`) that hold any of characters [a, b). The tokenizer gives no
 * offsets, so they come from encoding the prefixes text[:a] and text[:b]: their ids agree with the
 * whole text's up to the first token that reaches past the cut.
 */
export function tokenSpan(tokenizer: Tokenizer, text: string, tokens: number[], a: number, b: number): { start: number; end: number } {
  const commonPrefix = (cut: number) => {
    const ids = tokenizer.encode(text.slice(0, cut));
    let n = 0;
    while (n < ids.length && n < tokens.length && ids[n] === tokens[n]) n++;
    return { n, whole: n === ids.length };
  };
  const start = commonPrefix(a).n;
  const end = commonPrefix(b);
  return { start, end: Math.max(start, end.whole ? end.n : end.n + 1) };
}

function range(a: number, b: number): number[] {
  return Array.from({ length: b - a }, (_, i) => a + i);
}
