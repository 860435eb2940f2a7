import { decodedChunkHits, decodedChunkMisses } from '../metrics/metrics.js';
import { DEFAULT_DECODED_CACHE_MIB } from './decoded-cache-size.js';

/**
 * Decoded (decompressed) chunks in memory, least recently used evicted past `maxBytes`,
 * keyed by the digest of their stored bytes. A warm 4 KiB read of a compressed 64 KiB
 * chunk is then one copy, not one decompression; concurrent reads of a chunk share one
 * decode. One instance serves every layer of a process: equal chunks decode once.
 */
export class DecodedChunks {
  private readonly chunks = new Map<string, Buffer>();
  private readonly loading = new Map<string, Promise<Buffer>>();
  private bytes = 0;

  constructor(readonly maxBytes: number = DEFAULT_DECODED_CACHE_MIB * 2 ** 20) {}

  get size(): { chunks: number; bytes: number } {
    return { chunks: this.chunks.size, bytes: this.bytes };
  }

  /** The decoded chunk if it is in memory (then it becomes the most recent): the hot path, no promise. */
  peek(hex: string): Buffer | undefined {
    const hit = this.chunks.get(hex);
    if (!hit) return undefined;
    // Map order is use order: re-inserting makes it the most recent.
    this.chunks.delete(hex);
    this.chunks.set(hex, hit);
    decodedChunkHits.inc();
    return hit;
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
    return this.get(hex, load).then((data) => void data.copy(target, at, offset, offset + length));
  }

  /** The decoded chunk, from memory or from `load` (called once however many ask meanwhile). */
  get(hex: string, load: () => Promise<Buffer>): Promise<Buffer> {
    const hit = this.peek(hex);
    if (hit) return Promise.resolve(hit);
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
    this.chunks.set(hex, data);
    this.bytes += data.length;
    for (const [old, chunk] of this.chunks) {
      if (this.bytes <= this.maxBytes) break;
      this.chunks.delete(old);
      this.bytes -= chunk.length;
    }
  }
}
