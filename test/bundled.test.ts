// The bundled demo model: what the model card claims, checked on the shipped files.
import { describe, it, expect } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { BUNDLED_MODEL } from '../src/paths.js';
import { loadModel } from '../src/models/load.js';
import { readConfig } from '../src/models/config.js';
import { readSafetensorsHeader } from '../src/models/safetensors.js';
import { buildGpt2TokenizerJson } from '../src/models/gpt2-tokenizer.js';
import { streamLoss } from '../src/train/trainer.js';
import { DEMO_CONFIG } from '../src/train/demo-config.js';
import { tokenizeSplits } from '../src/data/brown.js';
import { BigramModel } from '../src/data/bigram.js';

describe('bundled demo model', () => {
  it('is a float16 Hugging Face GPT-2 folder under 40 MB with GPT-2\'s tokenizer', () => {
    expect(readConfig(BUNDLED_MODEL)).toEqual(DEMO_CONFIG);
    const weights = path.join(BUNDLED_MODEL, 'model.safetensors');
    expect(fs.statSync(weights).size).toBeLessThan(40e6);
    const header = readSafetensorsHeader(weights);
    expect([...header.tensors.values()].every((t) => t.dtype === 'F16')).toBe(true);
    expect(JSON.parse(fs.readFileSync(path.join(BUNDLED_MODEL, 'tokenizer.json'), 'utf8'))).toEqual(buildGpt2TokenizerJson());
  });

  it('scores the held-out Brown documents as its model card says, ahead of a Kneser-Ney bigram on the same predictions', async () => {
    const data = tokenizeSplits();
    const model = await loadModel(BUNDLED_MODEL);
    const seq = 256;
    const { loss, tokens } = await streamLoss(model.executor, model.cfg, model.weights, data.heldout, { seq, batch: 8 });
    // The bigram scores exactly the tokens the model predicted: in window w, tokens w*seq+1 .. w*seq+seq.
    const bigram = BigramModel.train(data.train);
    let nll = 0;
    for (let w = 0; w < tokens / seq; w++) {
      for (let i = w * seq + 1; i <= w * seq + seq; i++) nll -= Math.log(bigram.prob(data.heldout[i - 1], data.heldout[i]));
    }
    const bigramLoss = nll / tokens;
    expect(loss).toBeLessThan(bigramLoss);
    const report = JSON.parse(fs.readFileSync(path.join(BUNDLED_MODEL, 'training-report.json'), 'utf8'));
    expect(loss).toBeCloseTo(report.heldout.shippedFloat16.loss, 4);
    expect(report.heldout.perplexity).toBeLessThan(report.baseline.bigram.perplexity);
  });
});
