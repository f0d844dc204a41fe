/**
 * --chat for every command that takes a prompt: the prompt becomes the user's turn of the model's
 * chat template (with --system before it), ending with the header of the assistant's reply.
 */
import fs from 'node:fs';
import { Option } from 'commander';
import { LanternError } from '../../errors.js';
import { chatPrompt, tokenSpan } from '../../models/chat.js';
import type { ChatMessage, ChatPrompt } from '../../models/chat.js';
import type { HookedTransformer } from '../../models/hooked.js';

export interface ChatFlags {
  chat?: boolean;
  system?: string;
  chatTemplate?: string;
}

export function chatOption(): Option {
  return new Option('--chat', "wrap the prompt in the model's chat template as the user's message, ending where the assistant's reply begins");
}

export function systemOption(): Option {
  return new Option('--system <text>', "--chat: a system message before the user's");
}

export function chatTemplateFlag(): Option {
  return new Option('--chat-template <file|name>', "--chat: a Jinja template file, or the name of one of the model's templates, instead of its default (needed for models without one)");
}

export function checkChatFlags(opts: ChatFlags): void {
  if (opts.chat) return;
  if (opts.system !== undefined) throw new LanternError('--system applies only with --chat');
  if (opts.chatTemplate !== undefined) throw new LanternError('--chat-template applies only with --chat');
}

export function chatMessages(opts: ChatFlags, userText: string): ChatMessage[] {
  return [...(opts.system !== undefined ? [{ role: 'system', content: opts.system }] : []), { role: 'user', content: userText }];
}

/** The template option of chatPrompt: a file's text when --chat-template names a file. */
export function chatTemplateOption(opts: ChatFlags): string | undefined {
  const t = opts.chatTemplate;
  if (t === undefined) return undefined;
  if (fs.existsSync(t) && fs.statSync(t).isFile()) return fs.readFileSync(t, 'utf8');
  return t;
}

export function chatFromFlags(model: HookedTransformer, opts: ChatFlags, userText: string): ChatPrompt {
  return chatPrompt(model, chatMessages(opts, userText), { template: chatTemplateOption(opts) });
}

/** The prompt as a library method takes it: the text itself, or with --chat the ids of the templated chat. */
export function promptInput(model: HookedTransformer, opts: ChatFlags, text: string): string | number[] {
  return opts.chat ? chatFromFlags(model, opts, text).tokens : text;
}

/** Token positions of `part` within the user's message of a --chat prompt. */
export function userTextPositions(model: HookedTransformer, chat: ChatPrompt, part: string, what: string): number[] {
  const user = chat.spans.find((s) => s.role === 'user');
  const at = user === undefined ? -1 : chat.text.slice(user.charStart, user.charEnd).indexOf(part);
  if (user === undefined || part === '' || at < 0) throw new LanternError(`${what} ${JSON.stringify(part)} does not occur in the user's message`);
  const { start, end } = tokenSpan(model.tokenizer!, chat.text, chat.tokens, user.charStart + at, user.charStart + at + part.length);
  return Array.from({ length: end - start }, (_, i) => start + i);
}

/** What saved results record of the chat settings. */
export function chatSettings(opts: ChatFlags, chat: ChatPrompt | undefined): Record<string, unknown> {
  if (!opts.chat || chat === undefined) return {};
  return { chat: { messages: chat.messages, template: chat.template, text: chat.text } };
}
