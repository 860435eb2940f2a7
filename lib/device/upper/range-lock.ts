interface Held {
  start: number;
  end: number;
  released: Promise<void>;
}

/**
 * Mutual exclusion over byte ranges: overlapping holders run one at a time,
 * disjoint ones concurrently. Holders are the few requests in flight, so a
 * linear scan beats any index.
 */
export class RangeLock {
  private readonly held = new Set<Held>();

  /** Resolves with the release function once no holder overlaps [start, end). */
  async acquire(start: number, end: number): Promise<() => void> {
    for (;;) {
      let blocking: Held | undefined;
      for (const h of this.held) {
        if (h.start < end && start < h.end) {
          blocking = h;
          break;
        }
      }
      if (blocking === undefined) break;
      await blocking.released;
    }
    let release!: () => void;
    const entry: Held = { start, end, released: new Promise<void>((r) => (release = r)) };
    this.held.add(entry);
    return () => {
      this.held.delete(entry);
      release();
    };
  }
}
