/**
 * The `lantern` command line. Every command prints a one-line error for bad input (LanternError,
 * or a usage error found by commander) and exits 1; anything else is a bug and keeps its stack trace.
 */
import { Command, CommanderError } from 'commander';
import { LanternError } from '../../errors.js';
import { forwardCommand } from './forward.js';
import { generateCommand } from './generate.js';
import { makeRandomCommand, hooksCommand } from './models.js';
import { makePlantedCommand } from './planted.js';
import { attributeCommand } from './attribute.js';
import { lensCommand } from './lens.js';
import { patchCommand } from './patch.js';
import { promptsCommand } from './prompts.js';
import { circuitCommand } from './circuit.js';
import { tunedLensCommand } from './tuned-lens.js';
import { traceCommand } from './trace.js';
import { explainBlackboxCommand } from './explain-blackbox.js';
import { serveCommand } from './serve.js';
import { exportControlVectorCommand, exportGgufCommand } from './export-gguf.js';
import { headsCommand } from './heads.js';
import { neuronsCommand } from './neurons.js';
import { activationsCommand, probeCommand } from './representations.js';
import { ablateDirectionCommand, steerCommand } from './steer.js';
import { safetyCommand } from './safety.js';
import { featuresCommand } from './features.js';
import { saeCommand } from './sae.js';
import { toyCommand } from './toy.js';
import { sweepCommand } from './sweep.js';
import { judgeCommand } from './judge.js';
import { arenaCommand } from './arena.js';
import { chainpollCommand } from './chainpoll.js';
import { mcqCommand } from './mcq.js';
import { selfExplainCommand } from './self-explain.js';
import { interchangeCommand } from './interchange.js';
import { dasCommand } from './das.js';
import { scrubCommand } from './scrub.js';
import { workerCommand } from './worker.js';
import { jobsCommand } from './jobs.js';

// `lantern hooks | head`: a reader that stops early is not an error.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(0);
  console.error(`lantern: error: cannot write the output: ${e.message}`);
  process.exit(1);
});

const program = new Command('lantern')
  .description('Explain and interpret language models: attribution, lenses, patching — on ONNX Runtime.')
  // Commander's usage errors are printed below, as one `lantern: error:` line like every other error.
  .configureOutput({ outputError: () => {} })
  .exitOverride();

forwardCommand(program);
generateCommand(program);
hooksCommand(program);
makeRandomCommand(program);
makePlantedCommand(program);
attributeCommand(program);
lensCommand(program);
patchCommand(program);
promptsCommand(program);
circuitCommand(program);
tunedLensCommand(program);
traceCommand(program);
explainBlackboxCommand(program);
serveCommand(program);
exportGgufCommand(program);
exportControlVectorCommand(program);
headsCommand(program);
neuronsCommand(program);
activationsCommand(program);
probeCommand(program);
steerCommand(program);
ablateDirectionCommand(program);
safetyCommand(program);
featuresCommand(program);
saeCommand(program);
toyCommand(program);
sweepCommand(program);
judgeCommand(program);
arenaCommand(program);
chainpollCommand(program);
mcqCommand(program);
selfExplainCommand(program);
interchangeCommand(program);
dasCommand(program);
scrubCommand(program);
workerCommand(program);
jobsCommand(program);

/** Exits after help or version output, which commander reports as errors under exitOverride. */
const NOT_ERRORS = new Set(['commander.helpDisplayed', 'commander.help', 'commander.version']);

try {
  await program.parseAsync(process.argv);
} catch (e) {
  if (e instanceof CommanderError) {
    if (!NOT_ERRORS.has(e.code)) {
      const command = program.commands.find((c) => c.name() === process.argv[2]);
      const message = e.message.replace(/^error:\s*/, '').replace(/\s*\n\s*/g, ' ').replace(/\.$/, '');
      console.error(`lantern: error: ${message}; see 'lantern${command ? ` ${command.name()}` : ''} --help'`);
    }
    process.exit(e.exitCode);
  }
  if (e instanceof LanternError) {
    console.error(`lantern: error: ${e.message}`);
    process.exit(1);
  }
  throw e;
}
