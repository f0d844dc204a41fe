// Scripted OpenAI-compatible servers for the evaluation tests: real HTTP servers on ephemeral
// ports whose answers are a known function of the prompt (a judge with a planted position or
// length bias, a judge that answers garbage, hangs or rate-limits), so every number the
// evaluation reports can be derived by hand from the script.
import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** What a script answers: the reply text, or an HTTP failure, or nothing at all. */
export type ScriptReply = string | { status: number; headers?: Record<string, string>; body?: string } | 'hang';

export interface ScriptedServer {
  baseURL: string;
  /** Requests received, by prompt text. */
  prompts: string[];
  /** Each request's Authorization header (in the order of `prompts`). */
  authorizations: (string | undefined)[];
  close(): Promise<void>;
}

/** Serves /v1/models, /v1/chat/completions and /v1/completions, answering with `script(prompt, request)`. */
export async function scriptedServer(script: (prompt: string, body: Record<string, unknown>, n: number) => ScriptReply, model = 'scripted-judge'): Promise<ScriptedServer> {
  const prompts: string[] = [];
  const authorizations: (string | undefined)[] = [];
  const sockets = new Set<import('node:net').Socket>();
  const server = http.createServer((req, res) => {
    let data = '';
    req.on('data', (c) => (data += c));
    req.on('end', () => {
      if (req.method === 'GET' && req.url === '/v1/models') {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ object: 'list', data: [{ id: model, object: 'model' }] }));
        return;
      }
      const body = JSON.parse(data || '{}') as Record<string, unknown>;
      const chat = req.url === '/v1/chat/completions';
      const prompt = chat ? String((body.messages as { content: string }[]).at(-1)!.content) : String(body.prompt);
      prompts.push(prompt);
      authorizations.push(req.headers.authorization);
      let reply: ScriptReply;
      try {
        reply = script(prompt, body, prompts.length);
      } catch (e) {
        // A script bug must fail the test at once, not look like a hanging server.
        reply = { status: 400, body: JSON.stringify({ error: { message: `script error: ${(e as Error).message}` } }) };
      }
      if (reply === 'hang') return; // never answers: the client's timeout must end the request
      if (typeof reply !== 'string') {
        res.writeHead(reply.status, { 'content-type': 'application/json', ...(reply.headers ?? {}) });
        res.end(reply.body ?? JSON.stringify({ error: { message: `scripted ${reply.status}` } }));
        return;
      }
      const usage = { prompt_tokens: prompt.split(/\s+/).length, completion_tokens: reply.split(/\s+/).length };
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(chat
        ? { id: 'x', object: 'chat.completion', choices: [{ index: 0, message: { role: 'assistant', content: reply }, finish_reason: 'stop' }], usage }
        : { id: 'x', object: 'text_completion', choices: [{ index: 0, text: reply, finish_reason: 'stop' }], usage }));
    });
  });
  server.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    baseURL: `http://127.0.0.1:${port}/v1`,
    prompts,
    authorizations,
    close: () => new Promise<void>((r) => { for (const s of sockets) s.destroy(); server.close(() => r()); }),
  };
}

/** The two answers a pairwise judge prompt shows, by the section markers of Lantern's templates. */
export function pairOf(prompt: string): { a: string; b: string } {
  const a = /\[Reply of assistant A\]\n([\s\S]*?)\n\n\[Reply of assistant B\]/.exec(prompt) ?? /Reply A: ([\s\S]*?)\n\nReply B:/.exec(prompt);
  const b = /\[Reply of assistant B\]\n([\s\S]*?)(?:\n\n(?:First|Then)|$)/.exec(prompt) ?? /Reply B: ([\s\S]*?)\n\nGive/.exec(prompt);
  if (!a || !b) throw new Error(`not a pairwise prompt: ${prompt.slice(0, 200)}`);
  return { a: a[1], b: b[1] };
}

/** The answer a single-grading prompt shows. */
export function answerOf(prompt: string): string {
  const m = /\[Assistant reply\]\n([\s\S]*?)\n\n(?:First|$)/.exec(prompt) ?? /\[Assistant reply\]\n([\s\S]*)$/.exec(prompt);
  if (!m) throw new Error(`not a single-grading prompt: ${prompt.slice(0, 200)}`);
  return m[1];
}
