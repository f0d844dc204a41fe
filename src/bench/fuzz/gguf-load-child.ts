/**
 * Loads each GGUF file given on the command line through GgufBackend and prints one line per
 * file ("loaded <i>" or "refused <i> <message>"), so that the parent can tell which file a native
 * abort happened on. Run only by the fuzzer (gguf.ts).
 */
import { GgufBackend } from '../../backends/gguf.js';
import { LanternError } from '../../errors.js';

const files = process.argv.slice(2);
for (const [i, f] of files.entries()) {
  try {
    const b = await GgufBackend.open(f, { threads: 1, contextSize: 64, isolate: false });
    await b.close();
    process.stdout.write(`loaded ${i}\n`);
  } catch (e) {
    process.stdout.write(`refused ${i} ${e instanceof LanternError ? e.message : `(not a LanternError) ${(e as Error).message}`}\n`);
  }
}
process.exit(0);
