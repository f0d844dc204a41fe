/**
 * Token labels for display. A byte-level tokenizer splits an emoji or a CJK character into pieces
 * that each decode to U+FFFD on their own; the Workbench shows the characters such a run of pieces
 * forms (marked ¹ ² … by piece) and keeps the token ids and raw pieces for hover.
 */
import type { HookedTransformer } from '../../models/hooked.js';

const REPLACEMENT = '\uFFFD';
/** Longest run of tokens searched for one character (UTF-8 needs at most 4 bytes). */
const MAX_PIECES = 4;
const SUPERSCRIPT = ['⁰', '¹', '²', '³', '⁴', '⁵', '⁶', '⁷', '⁸', '⁹'];

/** GPT-2's byte-to-character table (bytes_to_unicode), inverted: which byte a piece's character stands for. */
const BYTE_OF: Map<string, number> = (() => {
  const bs: number[] = [];
  for (let b = 33; b <= 126; b++) bs.push(b);
  for (let b = 161; b <= 172; b++) bs.push(b);
  for (let b = 174; b <= 255; b++) bs.push(b);
  const cs = [...bs];
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n++);
    }
  }
  return new Map(bs.map((b, i) => [String.fromCharCode(cs[i]), b]));
})();

/** A lone piece of a character, as its bytes ("<F0 9F>"), when the vocabulary is byte-level; else its decoded text. */
function bytesLabel(m: HookedTransformer, id: number, decoded: string): string {
  const piece = m.tokenizer?.idToToken(id);
  if (!piece || ![...piece].every((c) => BYTE_OF.has(c))) return decoded;
  const hex = [...piece].map((c) => BYTE_OF.get(c)!.toString(16).toUpperCase().padStart(2, '0'));
  const prefix = decoded.replace(new RegExp(`${REPLACEMENT}+$`), '');
  // Leading whole characters (e.g. the space of "Ġð") stay readable.
  return `${prefix}<${hex.slice(new TextEncoder().encode(prefix).length).join(' ')}>`;
}

/**
 * One display label per token of `ids`: its text, or for the pieces of a character split across
 * tokens, that character with the piece's index as a superscript (every piece of "🍕" shows "🍕¹",
 * "🍕²", …).
 */
export function tokenLabels(m: HookedTransformer, ids: number[]): string[] {
  const single = m.tokenStrings(ids);
  const out = single.slice();
  for (let i = 0; i < ids.length; i++) {
    if (!single[i].includes(REPLACEMENT)) continue;
    let end = -1;
    let text = '';
    for (let j = i + 1; j < Math.min(ids.length, i + MAX_PIECES); j++) {
      text = m.toString(ids.slice(i, j + 1));
      if (!text.includes(REPLACEMENT)) {
        end = j;
        break;
      }
    }
    if (end < 0) {
      out[i] = bytesLabel(m, ids[i], single[i]);
      continue;
    }
    for (let k = i; k <= end; k++) out[k] = `${text}${SUPERSCRIPT[k - i + 1]}`;
    i = end;
  }
  return out;
}

/** A single token's label (a lone piece of a character shows its bytes). */
export function tokenLabel(m: HookedTransformer, id: number): string {
  const s = m.tokenStrings([id])[0];
  return s.includes(REPLACEMENT) ? bytesLabel(m, id, s) : s;
}
