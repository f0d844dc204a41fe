import { tokenizeSplits } from '../src/data/brown.js';
const s: any = tokenizeSplits();
const seen = new Map<number, number>(); for (const t of s.train) seen.set(t, (seen.get(t) ?? 0) + 1);
let unseen = 0; for (const t of s.heldout) if (!seen.has(t)) unseen++;
console.log('distinct train', seen.size, 'heldout tokens', s.heldout.length, 'unseen in heldout', unseen);
