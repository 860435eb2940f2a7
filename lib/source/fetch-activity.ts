/**
 * Counts on-demand fetches in flight, so background work (the prefetcher) can wait for
 * them to finish. Share one between the layers of an image, or the whole process, to
 * make prefetch yield to every client read of that scope.
 */
export class FetchActivity {
  private inFlight = 0;
  private waiters: (() => void)[] = [];

  get busy(): boolean {
    return this.inFlight > 0;
  }

  begin(): void {
    this.inFlight++;
  }

  end(): void {
    if (--this.inFlight > 0) return;
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  /** Resolves when no on-demand fetch is in flight. */
  idle(): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }
}
