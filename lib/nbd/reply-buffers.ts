/**
 * Buffers for READ replies (header and data in one, so one socket write).
 *
 * Small replies are carved out of shared 1 MiB slabs: a fresh ArrayBuffer per 4 KiB reply
 * (malloc, backing-store bookkeeping, GC pressure) is a visible share of the per-request cost.
 * Slab memory is never reused; a slab lives until its last reply has been written and dropped.
 *
 * Large replies reuse buffers once the socket has written them: a fresh 1 MiB buffer per read
 * costs page faults and zeroing, and drives V8's external-memory GCs. They are kept per
 * power-of-two capacity up to `limit` bytes in all; when a returned buffer does not fit, the
 * sizes asked for least recently make room, so a client that changes its request size (a
 * 256 KiB copy, then 1 MiB reads) does not find the pool full of buffers nobody asks for.
 */
export const SLAB_SIZE = 1024 * 1024;
export const SLAB_MAX_PIECE = 64 * 1024;

export class ReplyBuffers {
  private slab = Buffer.allocUnsafeSlow(SLAB_SIZE);
  private slabUsed = 0;
  /** Free memory by capacity; Map order is the order capacities were last asked for. */
  private readonly free = new Map<number, ArrayBuffer[]>();
  private pooledBytes = 0;

  constructor(readonly limit: number) {}

  get pooled(): number {
    return this.pooledBytes;
  }

  /** A buffer of exactly `length` bytes; give large ones back with `reuse` once written. */
  take(length: number): Buffer {
    if (length > SLAB_MAX_PIECE) {
      const capacity = 2 ** Math.ceil(Math.log2(length));
      const list = this.free.get(capacity) ?? [];
      // Re-inserted: this capacity is now the most recently asked for.
      this.free.delete(capacity);
      this.free.set(capacity, list);
      const memory = list.pop();
      if (memory) this.pooledBytes -= capacity;
      return memory ? Buffer.from(memory, 0, length) : Buffer.allocUnsafeSlow(capacity).subarray(0, length);
    }
    if (this.slabUsed + length > SLAB_SIZE) {
      this.slab = Buffer.allocUnsafeSlow(SLAB_SIZE);
      this.slabUsed = 0;
    }
    const piece = this.slab.subarray(this.slabUsed, this.slabUsed + length);
    // 8-byte aligned pieces, so an odd-sized reply does not misalign the next one.
    this.slabUsed += (length + 7) & ~7;
    return piece;
  }

  /** Takes back a large reply buffer the socket is done with. */
  reuse(reply: Buffer): void {
    const memory = reply.buffer as ArrayBuffer;
    const capacity = memory.byteLength;
    if (capacity > this.limit) return;
    for (const [size, list] of this.free) {
      if (this.pooledBytes + capacity <= this.limit) break;
      if (size === capacity) continue;
      while (list.length && this.pooledBytes + capacity > this.limit) {
        list.pop();
        this.pooledBytes -= size;
      }
      if (!list.length) this.free.delete(size);
    }
    if (this.pooledBytes + capacity > this.limit) return;
    let list = this.free.get(capacity);
    if (!list) this.free.set(capacity, (list = []));
    list.push(memory);
    this.pooledBytes += capacity;
  }
}
