import type { FetchActivity } from './fetch-activity.js';

export interface WriteBehindOptions {
  /** Bytes that may wait in memory; a write beyond this starts at once. */
  maxBytes: number;
  /** Writes start once no demand fetch has been in flight for this long. */
  quietMs: number;
  /** No write waits longer than this, however busy reads are. */
  maxDelayMs: number;
}

/**
 * When a cache write may start. A fetched chunk is answered from memory, so writing it to
 * disk can wait: during a cold start the reads come one after another, and each file's
 * creation (inode allocation, a thread-pool hop) competed with the next fetch on the same
 * cores. Writes therefore wait for a pause in demand fetches, bounded in bytes and time.
 */
export class WriteBehind {
  private heldBytes = 0;
  private quiet: Promise<void> | undefined;
  private flushing = false;
  private readonly releaseAll = new Set<() => void>();

  constructor(
    private readonly activity: FetchActivity,
    private readonly options: WriteBehindOptions,
  ) {}

  /** Resolves when a write of `size` bytes may start; call `done` when it has ended. */
  async slot(size: number): Promise<() => void> {
    if (this.flushing || this.heldBytes + size > this.options.maxBytes) return () => {};
    this.heldBytes += size;
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    this.releaseAll.add(release);
    const timer = setTimeout(release, this.options.maxDelayMs);
    await Promise.race([this.whenQuiet(), released]);
    clearTimeout(timer);
    this.releaseAll.delete(release);
    return () => {
      this.heldBytes -= size;
    };
  }

  /** Lets every waiting write start now, and later ones without waiting (closing). */
  flush(): void {
    this.flushing = true;
    for (const release of this.releaseAll) release();
  }

  /** One shared wait for the next quiet moment, however many writes are held. */
  private whenQuiet(): Promise<void> {
    this.quiet ??= this.activity.quietFor(this.options.quietMs).finally(() => (this.quiet = undefined));
    return this.quiet;
  }
}
