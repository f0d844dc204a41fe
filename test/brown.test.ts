import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { lanternHome } from '../src/paths.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LanternError } from '../src/errors.js';
import { BigramModel, bigramBaseline, neyDiscount } from '../src/data/bigram.js';
import {
  EOT_ID,
  brownDocs,
  brownSplits,
  brownTagged,
  detokenize,
  docText,
  gpt2Tokenizer,
  heldoutIndices,
  parseTaggedFile,
  tokenizeSplits,
  verifyAgainstGpt3Encoder,
  type TokenizedSplits,
} from '../src/data/brown.js';

const GENRES = [
  'adventure', 'belles_lettres', 'editorial', 'fiction', 'government', 'hobbies', 'humor', 'learned',
  'lore', 'mystery', 'news', 'religion', 'reviews', 'romance', 'science_fiction',
];

/** Words of a sentence written the corpus's way, split on spaces. */
const w = (s: string): string[] => s.split(' ');

describe('detokenize', () => {
  it('attaches punctuation and turns `` and \'\' into plain double quotes', () => {
    expect(detokenize([w("`` Only a relative handful of such reports was received '' , the jury said .")])).toBe(
      '"Only a relative handful of such reports was received", the jury said.',
    );
    expect(detokenize([w('Well , is it ( or is it not ) ? Yes : no ! Done ; 5 %')])).toBe('Well, is it (or is it not)? Yes: no! Done; 5%');
    expect(detokenize([w("He said `` `` '' '' .")])).toBe('He said """".');
    expect(detokenize([w('a [ b ] c { d } $ 5')])).toBe('a [b] c {d} $5');
  });

  it('attaches split-off clitics but not elisions', () => {
    expect(detokenize([w("I do n't think it 's true , they 're sure we 've won , I 'm told , we 'll see , he 'd say")])).toBe(
      "I don't think it's true, they're sure we've won, I'm told, we'll see, he'd say",
    );
    expect(detokenize([w("we'll get 'em in '61 , 'tis true")])).toBe("we'll get 'em in '61, 'tis true");
  });

  it('reads lone single quotes as opening and closing in turn', () => {
    expect(detokenize([w("more ' pro ' letters than ' con ' , and ' Do n't worry ' '' .")])).toBe(
      "more 'pro' letters than 'con', and 'Don't worry'\".",
    );
  });

  it('closes up dashes and slashes', () => {
    expect(detokenize([w('Teachers -- men in brown suits -- came ; counts / minute')])).toBe('Teachers--men in brown suits--came; counts/minute');
  });

  it("collapses the corpus's doubled ; ? ! : and the period after an abbreviation", () => {
    expect(detokenize([w('His face was fuller ; ;'), w('his lips were thin .')])).toBe('His face was fuller; his lips were thin.');
    expect(detokenize([w('Really ? ?'), w('Yes ! !'), w('Section 2 : :')])).toBe('Really? Yes! Section 2:');
    expect(detokenize([w('won by Ivan Allen Jr. .'), w('He left at 5 p.m. .')])).toBe('won by Ivan Allen Jr. He left at 5 p.m.');
    // Doubles of other punctuation are left alone, and so is a single ; ? !
    expect(detokenize([w('x , , y ( ( z')])).toBe('x,, y ((z');
  });

  it('joins the sentences of a paragraph with single spaces', () => {
    expect(detokenize([w('One .'), w('`` Two ! !'), w("Three '' .")])).toBe('One. "Two! Three".');
    expect(detokenize([])).toBe('');
  });
});

describe('parsing the tagged corpus format', () => {
  const FILE = [
    '',
    '',
    "\tThe/at jury/nn said/vbd ``/`` no/at ''/'' ./.",
    '',
    '',
    '',
    'Merger/nn-hl proposed/vbn-hl ',
    'However/wrb ,/, 1/2/cd of/in it/pps ;/. ;/.',
    'it/pps was/bedz Jr./np ./.',
    '',
    '',
    "\t'/' back/rb-hl with/in-hl the/at-hl Met/np-hl ",
    'We/ppss are/ber ./.',
    '',
  ].join('\n');

  it('splits paragraphs at blank lines, sentences at lines, word/tag at the last slash', () => {
    const paras = parseTaggedFile(FILE);
    expect(paras.length).toBe(3);
    expect(paras.map((p) => p.length)).toEqual([1, 3, 2]);
    expect(paras[0][0]).toEqual([['The', 'at'], ['jury', 'nn'], ['said', 'vbd'], ['``', '``'], ['no', 'at'], ["''", "''"], ['.', '.']]);
    expect(paras[1][1][2]).toEqual(['1/2', 'cd']);
    expect(() => parseTaggedFile('The/at jury')).toThrow(LanternError);
    expect(() => parseTaggedFile('The/at jury/')).toThrow(LanternError);
  });

  it('writes each paragraph on a line and headlines on lines of their own', () => {
    expect(docText({ paragraphs: parseTaggedFile(FILE) })).toBe(
      ['The jury said "no".', 'Merger proposed', 'However, 1/2 of it; it was Jr.', "'back with the Met", 'We are.'].join('\n'),
    );
  });
});

describe('the Brown corpus', () => {
  it('has NLTK\'s 500 documents, 15 genres, 57,340 sentences and 1,161,192 tagged tokens', () => {
    const tagged = brownTagged();
    expect(tagged.length).toBe(500);
    expect([...new Set(tagged.map((d) => d.genre))].sort()).toEqual(GENRES);
    expect(tagged.reduce((n, d) => n + d.sentences.length, 0)).toBe(57340);
    expect(tagged.reduce((n, d) => n + d.sentences.reduce((m, s) => m + s.length, 0), 0)).toBe(1161192);
    expect(tagged[0].id).toBe('ca01');
    expect(tagged[0].sentences[0].slice(0, 4)).toEqual([['The', 'at'], ['Fulton', 'np-tl'], ['County', 'nn-tl'], ['Grand', 'jj-tl']]);
    for (const d of tagged) expect(d.sentences).toEqual(d.paragraphs.flat());
  });

  it('reads as ordinary English', () => {
    const docs = brownDocs();
    expect(docs.reduce((n, d) => n + d.words, 0)).toBe(1161192);
    expect(docs[0].text.split('\n')[0]).toBe(
      'The Fulton County Grand Jury said Friday an investigation of Atlanta\'s recent primary election produced "no evidence" that any irregularities took place.',
    );
    const all = docs.map((d) => d.text).join('\n');
    // No corpus quotes (a '' after a digit is an inch mark: 1/2''), no leftover tags.
    expect(all).not.toMatch(/``|(?<![0-9])''|\/(?:at|nn|nns|np|vbd|vbz|jj|cc|pps|ppss)(?:-tl|-hl)?\b/);
    expect(all).not.toMatch(/ [.,;!?)]/); // nothing floats before punctuation
    expect(all).not.toMatch(/([;?!])\1/); // doubled ; ? ! are gone
    expect(all).not.toMatch(/^ | $|\n\n/m);
    for (const d of docs) expect(d.text.length).toBeGreaterThan(0);
  });
});

describe('train / held-out split', () => {
  it('picks round(n/20), at least one, evenly spread', () => {
    expect(heldoutIndices(1)).toEqual([]);
    expect(heldoutIndices(6)).toEqual([3]);
    expect(heldoutIndices(20)).toEqual([10]);
    expect(heldoutIndices(44)).toEqual([11, 33]);
    expect(heldoutIndices(80)).toEqual([10, 30, 50, 70]);
  });

  it('is deterministic, disjoint, complete, about 5%, and covers every genre on both sides', () => {
    const a = brownSplits();
    const b = brownSplits();
    expect(a.heldout.map((d) => d.id)).toEqual(b.heldout.map((d) => d.id));
    expect(a.train.map((d) => d.id)).toEqual(b.train.map((d) => d.id));
    // Pinned, so the split cannot drift between versions without this test noticing.
    expect(a.heldout.map((d) => d.id).join(' ')).toBe(
      'ca12 ca34 cb14 cc09 cd09 ce10 ce28 cf13 cf37 cg10 cg29 cg47 cg66 ch08 ch23 cj11 cj31 cj51 cj71 ck15 cl13 cm04 cn15 cp15 cr05',
    );
    const train = new Set(a.train.map((d) => d.id));
    const held = new Set(a.heldout.map((d) => d.id));
    expect(train.size).toBe(a.train.length);
    expect(held.size).toBe(a.heldout.length);
    expect([...held].filter((id) => train.has(id))).toEqual([]);
    expect(train.size + held.size).toBe(500);
    expect(held.size).toBe(25);
    expect([...new Set(a.train.map((d) => d.genre))].sort()).toEqual(GENRES);
    expect([...new Set(a.heldout.map((d) => d.genre))].sort()).toEqual(GENRES);
  });
});

describe('GPT-2 token streams', () => {
  let tmp: string;
  let first: TokenizedSplits;

  beforeAll(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lantern-brown-'));
    first = tokenizeSplits({ cacheDir: tmp });
  });
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('tokenizes both splits quickly, with <|endoftext|> only between documents', () => {
    expect(first.cached).toBe(false);
    expect(first.seconds).toBeLessThan(30);
    const { train, heldout } = brownSplits();
    const eots = (a: Uint16Array): number => a.reduce((n, t) => n + (t === EOT_ID ? 1 : 0), 0);
    expect(eots(first.train)).toBe(train.length - 1);
    expect(eots(first.heldout)).toBe(heldout.length - 1);
    for (const s of [first.train, first.heldout]) {
      expect(s[0]).not.toBe(EOT_ID);
      expect(s[s.length - 1]).not.toBe(EOT_ID);
      expect(s.reduce((a, b) => Math.max(a, b), 0)).toBe(EOT_ID); // ids < 50257, so Uint16 holds them
    }
    // About 1.1 tokens per corpus word; ~95% of the tokens are train.
    const words = brownDocs().reduce((n, d) => n + d.words, 0);
    const tokens = first.train.length + first.heldout.length;
    expect(tokens / words).toBeGreaterThan(1.0);
    expect(tokens / words).toBeLessThan(1.25);
    expect(first.heldout.length / tokens).toBeGreaterThan(0.03);
    expect(first.heldout.length / tokens).toBeLessThan(0.07);
  });

  it('decodes back to the documents, one per <|endoftext|>-separated piece', () => {
    const tok = gpt2Tokenizer();
    const pieces: number[][] = [[]];
    for (const t of first.heldout) {
      if (t === EOT_ID) pieces.push([]);
      else pieces[pieces.length - 1].push(t);
    }
    expect(pieces.map((p) => tok.decode(p))).toEqual(brownSplits().heldout.map((d) => d.text));
  });

  it('is cached on disk under data/ with a content hash, and re-tokenized when the file is bad', () => {
    expect(path.dirname(first.path)).toBe(path.join(tmp, 'data'));
    expect(path.basename(first.path)).toMatch(/^brown-gpt2-[0-9a-f]{16}\.tok$/);
    const again = tokenizeSplits({ cacheDir: tmp });
    expect(again.cached).toBe(true);
    expect(again.path).toBe(first.path);
    expect(again.train).toEqual(first.train);
    expect(again.heldout).toEqual(first.heldout);

    fs.writeFileSync(first.path, fs.readFileSync(first.path).subarray(0, 1000)); // truncated
    const notes: string[] = [];
    const redone = tokenizeSplits({ cacheDir: tmp, log: (l) => notes.push(l) });
    expect(redone.cached).toBe(false);
    expect(notes[0]).toMatch(/not a valid token cache/);
    expect(redone.heldout).toEqual(first.heldout);
    expect(tokenizeSplits({ cacheDir: tmp }).cached).toBe(true);
  });

  it('defaults to $LANTERN_HOME', () => {
    const saved = process.env.LANTERN_HOME;
    try {
      process.env.LANTERN_HOME = '/somewhere/lantern';
      expect(lanternHome()).toBe('/somewhere/lantern');
    } finally {
      if (saved === undefined) delete process.env.LANTERN_HOME;
      else process.env.LANTERN_HOME = saved;
    }
  });

  it('gives exactly the ids of gpt-3-encoder on a large sample of the corpus', () => {
    const docs = brownDocs();
    const sample = docs.filter((_, i) => i % 8 === 0); // 63 documents from every genre
    const check = verifyAgainstGpt3Encoder(sample);
    expect(check.docs).toBe(63);
    expect(check.chars).toBeGreaterThan(500_000);
    expect(check.tokens).toBeGreaterThan(100_000);
    expect(check.mismatches).toEqual([]);
  });

  it('bigram beats unigram on held-out Brown', () => {
    const r = bigramBaseline(first.train, first.heldout);
    expect(r.tokens).toBe(first.heldout.length);
    expect(r.bigram.perplexity).toBeLessThan(r.unigram.perplexity);
    expect(r.bigram.perplexity).toBeGreaterThan(50);
    expect(r.unigram.perplexity).toBeLessThan(50257);
    expect(r.bigram.perplexity).toBeCloseTo(Math.exp(r.bigram.crossEntropy), 9);
  });

  it('bigram probabilities sum to 1 over the vocabulary in every kind of context', () => {
    const m = BigramModel.train(first.train);
    // <|endoftext|>, " the", ".", ",", "!", a rare token, and one never seen as a context in train.
    const contexts = new Set(first.train);
    const unseen = [...Array(50257).keys()].find((v) => !contexts.has(v) && v !== EOT_ID);
    expect(unseen).toBeDefined();
    for (const v of [EOT_ID, 262, 13, 11, 0, 40000, unseen!]) {
      let sum = 0;
      let min = Infinity;
      for (let t = 0; t < 50257; t++) {
        const p = m.prob(v, t);
        sum += p;
        min = Math.min(min, p);
      }
      expect(Math.abs(sum - 1)).toBeLessThan(1e-9);
      expect(min).toBeGreaterThan(0);
      const d = m.distribution(v);
      expect(Math.abs(d.reduce((a, b) => a + b, 0) - 1)).toBeLessThan(1e-9);
      for (const t of [0, 13, 262, 50256]) expect(d[t]).toBeCloseTo(m.prob(v, t), 15);
    }
    let uni = 0;
    for (let t = 0; t < 50257; t++) uni += m.unigramProb(t);
    expect(Math.abs(uni - 1)).toBeLessThan(1e-9);
  });
});

describe('bigram model on a hand-made corpus', () => {
  // Vocabulary {0, 1, 2, 3}, 3 as <bos>. Train 0 1 0 1 2, read as pairs (3,0) (0,1) (1,0) (0,1) (1,2):
  //   c(3,0)=1 c(0,1)=2 c(1,0)=1 c(1,2)=1; n1=3, n2=1 -> D = 3/(3+2) = 0.6
  //   c(3)=1, c(0)=2, c(1)=2, c(2)=0;  N1+(3.)=1, N1+(0.)=1, N1+(1.)=2
  //   N1+(.0)=2 (after 3 and 1), N1+(.1)=1, N1+(.2)=1, N1+(.3)=0; N1+(..)=4; n1=2, n2=1 -> Dc = 2/4 = 0.5
  //   Pc(w) = max(N1+(.w) - 0.5, 0)/4 + 0.5*3/4 * 1/4:  Pc(0)=0.46875 Pc(1)=Pc(2)=0.21875 Pc(3)=0.09375
  // Held out 0 2 1, as (3,0) (0,2) (2,1):
  //   P(0|3) = (1-0.6)/1 + 0.6*1/1 * 0.46875 = 0.68125
  //   P(2|0) = 0         + 0.6*1/2 * 0.21875 = 0.065625
  //   P(1|2) = Pc(1) (context 2 never seen)  = 0.21875
  // Unigram: c = 2 2 1 0, N=5, n1=1, n2=2 -> Du = 0.2; Pu(w) = max(c-0.2, 0)/5 + 0.2*3/5 * 1/4
  //   Pu(0)=Pu(1)=0.39 Pu(2)=0.19 Pu(3)=0.03
  const opts = { vocabSize: 4, bos: 3 };

  it('gives the hand-computed probabilities and perplexities', () => {
    const m = BigramModel.train([0, 1, 0, 1, 2], opts);
    expect([m.discount, m.continuationDiscount, m.unigramDiscount]).toEqual([0.6, 0.5, 0.2]);
    const table = [0, 1, 2, 3].map((v) => [0, 1, 2, 3].map((t) => m.prob(v, t)));
    expect(table[3][0]).toBeCloseTo(0.68125, 14);
    expect(table[0][2]).toBeCloseTo(0.065625, 14);
    expect(table[2]).toEqual([0.46875, 0.21875, 0.21875, 0.09375].map((x) => expect.closeTo(x, 14)));
    expect(table[0][1]).toBeCloseTo((2 - 0.6) / 2 + 0.3 * 0.21875, 14);
    for (const row of table) expect(row.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 14);

    const r = bigramBaseline([0, 1, 0, 1, 2], [0, 2, 1], opts);
    const ce = -(Math.log(0.68125) + Math.log(0.065625) + Math.log(0.21875)) / 3;
    expect(r.bigram.crossEntropy).toBeCloseTo(ce, 12);
    expect(r.bigram.perplexity).toBeCloseTo((0.68125 * 0.065625 * 0.21875) ** (-1 / 3), 10); // 4.67619
    expect(r.unigram.perplexity).toBeCloseTo((0.39 * 0.19 * 0.39) ** (-1 / 3), 10); // 3.25866
    expect(r.tokens).toBe(3);
  });

  it('takes a fixed discount, and estimates n1/(n1+2n2) otherwise', () => {
    expect(neyDiscount([1, 1, 1, 2, 5])).toBe(0.6);
    expect(neyDiscount([3, 4])).toBe(0.5);
    const m = BigramModel.train([0, 1, 0, 1, 2], { ...opts, discount: 1 });
    expect(m.prob(0, 1)).toBeCloseTo(1 / 2 + (1 * 1) / 2 * 0.21875, 14);
  });

  it('rejects ids outside the vocabulary and empty streams', () => {
    expect(() => BigramModel.train([0, 4], opts)).toThrow(LanternError);
    expect(() => BigramModel.train([], opts)).toThrow(LanternError);
    expect(() => bigramBaseline([0, 1], [7], opts)).toThrow(LanternError);
    expect(() => bigramBaseline([0, 1], [], opts)).toThrow(LanternError);
    expect(() => BigramModel.train([0, 1], { ...opts, bos: 9 })).toThrow(LanternError);
    expect(() => BigramModel.train([0, 1], { ...opts, discount: 1.5 })).toThrow(LanternError);
  });
});
