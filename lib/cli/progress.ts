import type * as CliProgress from 'cli-progress';
import { createRequire } from 'node:module';

// Loaded only when a bar is shown: ~10 ms of every command's start otherwise (serve, pull in scripts).
const loadCliProgress = () => createRequire(import.meta.url)('cli-progress') as typeof CliProgress;

export interface ProgressReporter {
  update(done: number, total: number): void;
  stop(): void;
}

const silent: ProgressReporter = { update() {}, stop() {} };

/**
 * A progress bar on stderr when it is a terminal and output is for humans; silent
 * otherwise, so `--json` and pipes stay machine-readable.
 */
export function progressBar(label: string, options: { json?: boolean }): ProgressReporter {
  if (options.json || !process.stderr.isTTY) return silent;
  const cliProgress = loadCliProgress();
  const bar = new cliProgress.SingleBar(
    {
      format: `${label} [{bar}] {percentage}% | {doneMiB}/{totalMiB} MiB | {eta_formatted}`,
      stream: process.stderr,
      hideCursor: true,
    },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  const mib = (n: number) => (n / 1048576).toFixed(1);
  return {
    update(done, total) {
      if (!started) {
        bar.start(total, 0, { doneMiB: mib(0), totalMiB: mib(total) });
        started = true;
      }
      bar.update(done, { doneMiB: mib(done), totalMiB: mib(total) });
    },
    stop() {
      if (started) bar.stop();
    },
  };
}

/** Runs `fn` with a progress callback and always takes the bar down after. */
export async function withProgress<T>(label: string, options: { json?: boolean }, fn: (update: (done: number, total: number) => void) => Promise<T>): Promise<T> {
  const bar = progressBar(label, options);
  try {
    return await fn((d, t) => bar.update(d, t));
  } finally {
    bar.stop();
  }
}
