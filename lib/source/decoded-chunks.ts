import { decodedChunkHits, decodedChunkMisses } from '../metrics/metrics.js';
import { DEFAULT_DECODED_CACHE_MIB } from './decoded-cache-size.js';

/**
 * Hits this soon after a chunk was decoded (counted in lookups) are one reference, not reuse:
 * a sequential reader's sixteen 4 KiB reads of a 64 KiB chunk, interleaved with up to a few dozen
 * other streams, must not make a chunk it will never read again look hot.
 */
export const CORRELATED_LOOKUPS = 256;

interface Entry {
  readonly hex: string;
  readonly data: Buffer;
  /** Reused since the eviction hand last passed it (SIEVE's bit). */
  visited: boolean;
  /** The lookup count when it was decoded. */
  readonly decodedAt: number;
  newer: Entry | undefined;
  older: Entry | undefined;
}

/**
 * Decoded (decompressed) chunks in memory, at most `maxBytes`, keyed by the digest of their
 * stored bytes. A warm 4 KiB read of a compressed 64 KiB chunk is then one copy, not one
 * decompression; concurrent reads of a chunk share one decode. One instance serves every layer
 * of a process: equal chunks decode once.
 *
 * Eviction is SIEVE (Zhang et al., NSDI '24): chunks sit in decode order, a hit only sets a bit,
 * and a hand moving from the oldest towards the newest evicts the first chunk without the bit,
 * clearing the bits it passes. Unlike LRU, a hit changes no Map (LRU's delete and re-insert cost
 * 4x a lookup and leave the table to be rehashed), and a scan larger than the cache evicts its own
 * chunks instead of the reused ones, since hits within CORRELATED_LOOKUPS of a decode do not count.
 */
export class DecodedChunks {
  private readonly chunks = new Map<string, Entry>();
  private readonly loading = new Map<string, Promise<Buffer>>();
  private bytes = 0;
  private lookups = 0;
  private newest: Entry | undefined;
  private oldest: Entry | undefined;
  /** Next eviction candidate; undefined: start again at the oldest. */
  private hand: Entry | undefined;

  constructor(readonly maxBytes: number = DEFAULT_DECODED_CACHE_MIB * 2 ** 20) {}

  get size(): { chunks: number; bytes: number } {
    return { chunks: this.chunks.size, bytes: this.bytes };
  }

  /** Whether the chunk is in memory, without counting as a use (tests, diagnostics). */
  has(hex: string): boolean {
    return this.chunks.has(hex);
  }

  /** The decoded chunk if it is in memory: the hot path, no promise, no allocation. */
  peek(hex: string): Buffer | undefined {
    const now = ++this.lookups;
    const hit = this.chunks.get(hex);
    if (!hit) return undefined;
    if (!hit.visited && now - hit.decodedAt > CORRELATED_LOOKUPS) hit.visited = true;
    decodedChunkHits.inc();
    return hit.data;
  }

  /**
   * Copies bytes [offset, offset+length) of the decoded chunk into target at `at`: at once when it
   * is in memory (undefined then: the hot path makes no promise), else once `load` has decoded it.
   */
  copyInto(hex: string, load: () => Promise<Buffer>, offset: number, target: Buffer, at: number, length: number): Promise<void> | undefined {
    const hit = this.peek(hex);
    if (hit) {
      hit.copy(target, at, offset, offset + length);
      return undefined;
    }
    return this.load(hex, load).then((data) => void data.copy(target, at, offset, offset + length));
  }

  /** The decoded chunk, from memory or from `load` (called once however many ask meanwhile). */
  get(hex: string, load: () => Promise<Buffer>): Promise<Buffer> {
    const hit = this.peek(hex);
    return hit ? Promise.resolve(hit) : this.load(hex, load);
  }

  private load(hex: string, load: () => Promise<Buffer>): Promise<Buffer> {
    let pending = this.loading.get(hex);
    if (!pending) {
      decodedChunkMisses.inc();
      pending = load().then(
        (data) => {
          this.loading.delete(hex);
          this.keep(hex, data);
          return data;
        },
        (err: unknown) => {
          this.loading.delete(hex);
          throw err;
        },
      );
      this.loading.set(hex, pending);
    }
    return pending;
  }

  private keep(hex: string, data: Buffer): void {
    if (data.length > this.maxBytes || this.chunks.has(hex)) return;
    while (this.bytes + data.length > this.maxBytes) this.evictOne();
    const entry: Entry = { hex, data, visited: false, decodedAt: this.lookups, newer: undefined, older: this.newest };
    if (this.newest) this.newest.newer = entry;
    else this.oldest = entry;
    this.newest = entry;
    this.chunks.set(hex, entry);
    this.bytes += data.length;
  }

  private evictOne(): void {
    let victim = this.hand ?? this.oldest!;
    while (victim.visited) {
      victim.visited = false;
      victim = victim.newer ?? this.oldest!;
    }
    this.hand = victim.newer;
    if (victim.older) victim.older.newer = victim.newer;
    else this.oldest = victim.newer;
    if (victim.newer) victim.newer.older = victim.older;
    else this.newest = victim.older;
    this.chunks.delete(victim.hex);
    this.bytes -= victim.data.length;
  }
}
