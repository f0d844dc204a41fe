/**
 * A scripted OpenAI-compatible server standing in for an explainer / simulator LLM in tests: it
 * reads Lantern's prompts (DEFAULT_PROMPTS) and answers as a competent model would when the
 * explanation names a token in quotes: the simulator predicts 10 on that token and 0 elsewhere,
 * detection says yes when the text contains it, fuzzing when every marked token is it. The
 * explainer's answer is a function of the records it is shown, supplied by the test.
 *
 * Tokens are words with their leading space, tabs and line breaks, so continuations and the
 * simulator's tab positions start at token boundaries as with GPT-2's tokenizer.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ScriptedServer {
  url: string;
  requests: { path: string; body: Record<string, unknown> }[];
  close(): Promise<void>;
}

export interface Script {
  /** The explainer's sentence, from the records it sees as (token, scaled activation) pairs. */
  explain: (records: [string, number][][]) => string;
  /** Leave out log-probs (forces the generated-numbers simulator). */
  noEcho?: boolean;
  /** SASC: the summary of the n-grams (asked once per candidate, with seeds 0, 1, …). */
  summarize?: (ngrams: string[], seed: number) => string;
}

const tokenize = (s: string) => s.match(/\t|\n| ?[^\t\n ]+| /g) ?? [];

function named(explanation: string): string | undefined {
  return /"([^"]+)"/.exec(explanation)?.[1];
}

export async function scriptedServer(script: Script): Promise<ScriptedServer> {
  const requests: ScriptedServer['requests'] = [];
  const complete = (body: Record<string, unknown>) => {
    const prompt = String(body.prompt);
    const maxTokens = Number(body.max_tokens ?? 16);
    if (body.echo && maxTokens === 0) {
      if (script.noEcho) return { status: 400, json: { error: { message: 'echo is not supported' } } };
      const pieces = tokenize(prompt);
      const offsets: number[] = [];
      let at = 0;
      for (const p of pieces) { offsets.push(at); at += [...p].length; }
      const explanation = /explained as: "(.*)"\.\n/.exec(prompt)?.[1] ?? '';
      const token = named(explanation);
      const top: Record<string, number>[] = pieces.map(() => ({ [' x']: -0.1 }));
      const logprobs: (number | null)[] = pieces.map((_, i) => (i === 0 ? null : -1));
      if (prompt.includes('predict the feature\'s activation')) {
        pieces.forEach((p, i) => {
          if (i < 2 || pieces[i - 1] !== '\t') return;
          top[i] = pieces[i - 2] === token ? { '10': Math.log(0.9), '0': Math.log(0.1) } : { '0': Math.log(0.95), '1': Math.log(0.05) };
        });
      } else if (prompt.includes('Answer yes or no.')) {
        const text = /Text: (.*)\n/.exec(prompt)?.[1] ?? '';
        const marked = [...text.matchAll(/<<(.*?)>>/g)].map((m) => m[1]);
        const yes = prompt.includes('marked <<like this>>')
          ? marked.length > 0 && marked.every((m) => m === token)
          : token !== undefined && text.includes(token);
        const last = pieces[pieces.length - 1];
        logprobs[pieces.length - 1] = Math.log((last === ' yes') === yes ? 0.9 : 0.1);
      }
      return { json: { choices: [{ text: prompt, logprobs: { tokens: pieces, token_logprobs: logprobs, text_offset: offsets, top_logprobs: top } }], usage: { prompt_tokens: pieces.length, completion_tokens: 0 } } };
    }
    let text: string;
    if (prompt.endsWith('Explanation: this feature fires on')) {
      const blocks = prompt.split('<start>\n').slice(1).map((b) => b.split('\n<end>')[0].split('\n').map((l) => {
        const [t, v] = l.split('\t');
        return [t, Number(v)] as [string, number];
      }));
      text = ` ${script.explain(blocks)}\nmore text`;
    } else if (prompt.includes('Rewrite the excerpt below')) {
      const token = named(/explained as: "(.*)"\.\n/.exec(prompt)?.[1] ?? '');
      const lines = prompt.split('<start>\n')[1].split('\n<end>')[0].split('\n');
      text = lines.map((l) => `${l}\t${l === token ? 10 : 0}`).join('\n') + '\n<end>';
    } else if (prompt.endsWith('The common theme is')) {
      const ngrams = prompt.split('\n').filter((l) => l.startsWith('- ')).map((l) => l.slice(2));
      text = ` ${script.summarize?.(ngrams, Number(body.seed ?? 0)) ?? 'nothing'}\n`;
    } else if (prompt.includes('each clearly about')) {
      const token = named(/clearly about (.*)\.\n1\./.exec(prompt)?.[1] ?? '') ?? 'q';
      text = [1, 2, 3, 4, 5].map((i) => `${i === 1 ? ' ' : `${i}. `}a${token}${token} o${token}e`).join('\n');
    } else {
      text = ' ';
    }
    return { json: { choices: [{ text, logprobs: null }], usage: { prompt_tokens: tokenize(prompt).length, completion_tokens: tokenize(text).length } } };
  };
  const server = http.createServer((req, res) => {
    let raw = '';
    req.on('data', (c) => (raw += c));
    req.on('end', () => {
      const body = raw ? (JSON.parse(raw) as Record<string, unknown>) : {};
      requests.push({ path: req.url ?? '', body });
      const send = (status: number, json: unknown) => { res.writeHead(status, { 'content-type': 'application/json' }); res.end(JSON.stringify(json)); };
      if (req.url === '/v1/models') return send(200, { data: [{ id: 'scripted' }] });
      if (req.url === '/v1/completions') {
        const r = complete(body);
        return send(r.status ?? 200, r.json);
      }
      send(404, { error: { message: `no route ${req.url}` } });
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/v1`, requests, close: () => new Promise((r) => server.close(() => r())) };
}
