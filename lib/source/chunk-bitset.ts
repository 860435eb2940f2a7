/** One bit per chunk: which chunks of a layer are local, or have been read. */
export class ChunkBitset {
  private readonly bits: Uint8Array;
  private setCount = 0;

  constructor(readonly size: number) {
    this.bits = new Uint8Array(Math.ceil(size / 8));
  }

  has(i: number): boolean {
    return (this.bits[i >> 3]! & (1 << (i & 7))) !== 0;
  }

  /** True if the bit was newly set. */
  set(i: number): boolean {
    if (this.has(i)) return false;
    this.bits[i >> 3]! |= 1 << (i & 7);
    this.setCount++;
    return true;
  }

  clear(i: number): boolean {
    if (!this.has(i)) return false;
    this.bits[i >> 3]! &= ~(1 << (i & 7));
    this.setCount--;
    return true;
  }

  get count(): number {
    return this.setCount;
  }

  /** Whether every bit of [first, first+count) is set. */
  hasAll(first: number, count: number): boolean {
    if (first + count > this.size) return false;
    for (let i = first; i < first + count; i++) if (!this.has(i)) return false;
    return true;
  }

  /** A copy of the bits: bit i is (byte i >> 3) & (1 << (i & 7)), as peer HAVE messages carry them. */
  toBytes(): Buffer {
    return Buffer.from(this.bits);
  }

  /** The bitset of `size` bits in `bytes` (laid out as `toBytes`); bits past `size` are ignored. */
  static fromBytes(size: number, bytes: Uint8Array): ChunkBitset {
    const set = new ChunkBitset(size);
    for (let i = 0; i < size; i++) if ((bytes[i >> 3]! & (1 << (i & 7))) !== 0) set.set(i);
    return set;
  }
}
