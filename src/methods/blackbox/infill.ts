/**
 * Infilling a masked chunk for CELL. ICX360 uses a masked-span model (BART or T5) that reads both
 * sides of the mask; Lantern infills with any backend's `generate`, so the bundled model (or a
 * local GGUF, or a server) does the job offline. A causal model reads only the left context: the
 * replacement is the first words it writes after the text before the chunk, sampled (temperature
 * 1, seeded) so that different tries give different edits.
 */
import type { LanguageModelBackend } from '../../backends/types.js';
import { splitWords } from './text.js';

/** Writes replacement text for a masked chunk of a prompt (CELL's edits). */
export interface Infiller {
  readonly id: string;
  /** Replacement text for chunks[position] ('' deletes the chunk). */
  infill(chunks: string[], position: number, seed: number): Promise<string>;
  /** Calls this infiller made to its model so far. */
  calls(): number;
}

const TRAILING_PUNCT = /[.,!?;:]+$/;

/** How an infiller samples replacement text. */
export interface BackendInfillerOptions {
  /** Sampling temperature (default 1). */
  temperature?: number;
  /** Tries with new seeds when the model repeats the chunk or writes nothing (default 3). */
  attempts?: number;
}

/** An infiller that asks a backend's `generate` for the replacement. */
export function backendInfiller(backend: LanguageModelBackend, opts: BackendInfillerOptions = {}): Infiller {
  const temperature = opts.temperature ?? 1;
  const attempts = opts.attempts ?? 3;
  let calls = 0;
  return {
    id: `generate(${backend.id},temperature=${temperature})`,
    async infill(chunks, position, seed) {
      const original = chunks[position];
      const n = Math.max(1, splitWords(original).length);
      // At the start of the prompt there is no left context; a newline is where documents begin.
      const left = chunks.slice(0, position).filter((c) => c.length > 0).join(' ') || '\n';
      // The chunk's closing punctuation ends its sentence; the replacement keeps it.
      const punct = TRAILING_PUNCT.exec(original)?.[0] ?? '';
      for (let a = 0; a < attempts; a++) {
        calls++;
        const g = await backend.generate(left, { maxTokens: n + 2, temperature, seed: seed + a });
        const words = splitWords(g.text).slice(0, n);
        const text = words.join(' ').replace(TRAILING_PUNCT, '');
        if (text.length > 0 && text + punct !== original) return text + punct;
      }
      return '';
    },
    calls: () => calls,
  };
}
