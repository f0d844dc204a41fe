/**
 * The `lantern` command line. Every command prints a one-line error for bad input (LanternError)
 * and exits 1; anything else is a bug and keeps its stack trace.
 */
import { Command, CommanderError } from 'commander';
import { LanternError } from '../../errors.js';
import { forwardCommand } from './forward.js';
import { makeRandomCommand, hooksCommand } from './models.js';

const program = new Command('lantern')
  .description('Explain and interpret language models: attribution, lenses, patching — on ONNX Runtime.')
  .showHelpAfterError('(run with --help for usage)')
  .exitOverride();

forwardCommand(program);
hooksCommand(program);
makeRandomCommand(program);

try {
  await program.parseAsync(process.argv);
} catch (e) {
  if (e instanceof CommanderError) process.exit(e.exitCode);
  if (e instanceof LanternError) {
    console.error(`lantern: error: ${e.message}`);
    process.exit(1);
  }
  throw e;
}
