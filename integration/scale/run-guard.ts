// The one clean-up of a run that owns namespaces, links and processes: it runs once, at
// whichever comes first of the run's end, SIGINT/SIGTERM (then the process exits 130/143)
// and the deadline (exit 1). The datacenter and VM harnesses and the cold-start bench use it.

export interface RunGuard {
  /** Runs the clean-up (once; later calls wait for the same one) and drops the deadline. */
  finish(): Promise<void>;
  /** The exit status an abort (signal, deadline) chose; undefined while none happened. */
  readonly abortStatus: number | undefined;
}

/** `log` gets the reason of an abort (`SIGINT`, `the run took more than N s`). */
export function guardRun(cleanUp: () => Promise<void>, log: (why: string) => void, timeoutS?: number): RunGuard {
  let cleaning: Promise<void> | undefined;
  let abortStatus: number | undefined;
  const once = () => (cleaning ??= cleanUp());
  const abort = (why: string, status: number) => {
    if (abortStatus !== undefined) return;
    log(why);
    abortStatus ??= status;
    once().then(
      () => process.exit(status),
      (e: Error) => {
        log(`clean-up failed: ${e.message}`);
        process.exit(status);
      },
    );
  };
  // `on`, not `once`: support/processes.ts kills the children on a signal and raises it again,
  // and with no listener left that second delivery would end the process mid-clean-up. While
  // cleaning, a repeated signal only waits for the same clean-up.
  process.on('SIGINT', () => abort('SIGINT', 130));
  process.on('SIGTERM', () => abort('SIGTERM', 143));
  const deadline = timeoutS === undefined ? undefined : setTimeout(() => abort(`the run took more than ${timeoutS} s`, 1), timeoutS * 1000);
  return {
    finish() {
      clearTimeout(deadline);
      return once();
    },
    get abortStatus() {
      return abortStatus;
    },
  };
}
