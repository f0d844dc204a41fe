/** IOI prompts for any tokenizer: the planted IOI task's templates and names, encoded piece by piece. */
import { LanternError } from '../../errors.js';
import type { HookedTransformer } from '../../models/hooked.js';
import { IOI_NAMES, IOI_TEMPLATES } from '../../models/planted/ioi.js';
import { Rng } from '../../rng.js';
import type { IoiPrompt } from './detectors.js';

/**
 * `n` IOI sentences ("When Mary and John went to the store, John gave a drink to"), ABBA or BABA
 * at random, with names that are one token of this model's tokenizer; deterministic in `seed`.
 */
export function ioiPromptsFor(model: HookedTransformer, n = 50, seed = 0): IoiPrompt[] {
  const one = (s: string) => {
    const ids = model.encode(s);
    return ids.length === 1 && ids[0] < model.cfg.dVocab ? ids[0] : undefined;
  };
  const names = IOI_NAMES.map((x) => ({ name: x.name, id: one(` ${x.name}`) })).filter((x): x is { name: string; id: number } => x.id !== undefined);
  if (names.length < 2) throw new LanternError(`fewer than two IOI names are single tokens of ${model.source}'s tokenizer; give IOI prompts of your own`);
  const rng = new Rng(seed >>> 0);
  const pick = (k: number) => Math.floor(rng.next() * k);
  return Array.from({ length: n }, () => {
    const template = IOI_TEMPLATES[pick(IOI_TEMPLATES.length)];
    const i = pick(names.length);
    let j = pick(names.length - 1);
    if (j >= i) j++;
    const [io, s] = [names[i], names[j]];
    const [a, b] = rng.next() < 0.5 ? [io, s] : [s, io];
    const tokens: number[] = model.bos === undefined ? [] : [model.bos];
    let ioPos = -1;
    const sPos: number[] = [];
    for (const piece of template) {
      const name = piece === 'A' ? a : piece === 'B' ? b : piece === 'S' ? s : null;
      if (name) {
        (name === io ? (ioPos = tokens.length) : sPos.push(tokens.length));
        tokens.push(name.id);
      } else {
        tokens.push(...model.encode((piece as [string, number])[0]));
      }
    }
    return { tokens, end: tokens.length - 1, io: io.id, s: s.id, ioPos, sPos };
  });
}
