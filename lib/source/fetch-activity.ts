import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Counts on-demand fetches in flight, so background work (the prefetcher) can wait for
 * them to finish. Share one between the layers of an image, or the whole process, to
 * make prefetch yield to every client read of that scope.
 */
export class FetchActivity {
  private inFlight = 0;
  /** When the last fetch in flight ended (performance.now()). */
  private lastEnd = 0;
  private waiters: (() => void)[] = [];

  get busy(): boolean {
    return this.inFlight > 0;
  }

  begin(): void {
    this.inFlight++;
  }

  end(): void {
    if (--this.inFlight > 0) return;
    this.lastEnd = performance.now();
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  /** Resolves when no on-demand fetch is in flight. */
  idle(): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Resolves once no on-demand fetch has been in flight for `ms`. */
  async quietFor(ms: number): Promise<void> {
    for (;;) {
      await this.idle();
      const left = this.lastEnd + ms - performance.now();
      if (left <= 0) return;
      await sleep(left);
    }
  }
}
