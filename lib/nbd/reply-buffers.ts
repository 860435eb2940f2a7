/**
 * Buffers for READ replies (header and data in one, so one socket write).
 *
 * Small replies are carved out of shared 1 MiB slabs: a fresh ArrayBuffer per 4 KiB reply
 * (malloc, backing-store bookkeeping, GC pressure) is a visible share of the per-request cost.
 * Pieces given back once written are counted per slab: a slab with none left out is carved
 * again from its start (the current one) or kept as a spare (an earlier one). Fresh memory is
 * a page fault per 4 KiB touched, 11 µs each on the KVM guests measured, which was most of
 * what a warm 4 KiB read cost beyond nbdkit's (integration/bench/README.md §Reply memory).
 * A piece that is never given back (its connection closed) only keeps its slab from reuse.
 *
 * Large replies reuse buffers once the socket has written them: a fresh 1 MiB buffer per read
 * costs page faults and zeroing, and drives V8's external-memory GCs. They are kept per
 * power-of-two capacity up to `limit` bytes in all; when a returned buffer does not fit, the
 * sizes asked for least recently make room, so a client that changes its request size (a
 * 256 KiB copy, then 1 MiB reads) does not find the pool full of buffers nobody asks for.
 */
export const SLAB_SIZE = 1024 * 1024;
export const SLAB_MAX_PIECE = 64 * 1024;
/** Emptied slabs kept for the next ones: enough for 32 × 64 KiB replies in flight besides the current slab. */
export const SPARE_SLABS = 2;

interface Slab {
  readonly memory: Buffer;
  used: number;
  /** Pieces handed out and not yet given back. */
  out: number;
}

export class ReplyBuffers {
  private slab: Slab = ReplyBuffers.slabOf(Buffer.allocUnsafeSlow(SLAB_SIZE));
  /** Slab bookkeeping by memory; weak, so a slab whose pieces were dropped unreturned is collected. */
  private readonly slabs = new WeakMap<ArrayBuffer, Slab>();
  private readonly spareSlabs: Buffer[] = [];
  /** Free memory by capacity; Map order is the order capacities were last asked for. */
  private readonly free = new Map<number, ArrayBuffer[]>();
  private pooledBytes = 0;

  constructor(readonly limit: number) {
    this.slabs.set(this.slab.memory.buffer as ArrayBuffer, this.slab);
  }

  get pooled(): number {
    return this.pooledBytes;
  }

  /** A buffer of exactly `length` bytes; give it back with `reuse` once written, and never touch it again. */
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
    let slab = this.slab;
    if (slab.used + length > SLAB_SIZE) {
      slab = this.slab = ReplyBuffers.slabOf(this.spareSlabs.pop() ?? Buffer.allocUnsafeSlow(SLAB_SIZE));
      this.slabs.set(slab.memory.buffer as ArrayBuffer, slab);
    }
    const piece = slab.memory.subarray(slab.used, slab.used + length);
    // 8-byte aligned pieces, so an odd-sized reply does not misalign the next one.
    slab.used += (length + 7) & ~7;
    slab.out++;
    return piece;
  }

  /** Takes back a reply buffer the socket is done with. */
  reuse(reply: Buffer): void {
    const memory = reply.buffer as ArrayBuffer;
    const slab = this.slabs.get(memory);
    if (slab) {
      if (--slab.out > 0) return;
      if (slab === this.slab) slab.used = 0;
      else {
        this.slabs.delete(memory);
        if (this.spareSlabs.length < SPARE_SLABS) this.spareSlabs.push(slab.memory);
      }
      return;
    }
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

  private static slabOf(memory: Buffer): Slab {
    return { memory, used: 0, out: 0 };
  }
}
