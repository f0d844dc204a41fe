/** The CLI's progress bar for counted work (prompts, shards): drawn on stderr when it is a terminal, silent otherwise. */
import cliProgress from 'cli-progress';

/** A bar labelled `label` counting `unit`s; it starts on the first update, so a job with nothing to do draws nothing. */
export function progressBar(label: string, unit: string): { update: (done: number, total: number) => void; stop: () => void } {
  if (!process.stderr.isTTY) return { update: () => {}, stop: () => {} };
  const bar = new cliProgress.SingleBar({
    stream: process.stderr, format: `${label} |{bar}| {value}/{total} ${unit} ETA {eta_formatted}`,
    barCompleteChar: '\u2588', barIncompleteChar: '\u2591', gracefulExit: false,
  });
  let started = false;
  return {
    update: (done, total) => { if (!started) { bar.start(total, 0); started = true; } bar.update(done); },
    stop: () => started && bar.stop(),
  };
}

/**
 * Bars for work that goes through named stages (patterns, then ablations, ...): a bar per stage,
 * the previous one finished when the next starts. `stop` ends the last.
 */
export function stagedProgressBars(unit: string): { update: (stage: string, done: number, total: number) => void; stop: () => void } {
  let current: { stage: string; bar: ReturnType<typeof progressBar> } | undefined;
  return {
    update: (stage, done, total) => {
      if (current?.stage !== stage) {
        current?.bar.stop();
        current = { stage, bar: progressBar(stage, unit) };
      }
      current.bar.update(done, total);
    },
    stop: () => current?.bar.stop(),
  };
}
