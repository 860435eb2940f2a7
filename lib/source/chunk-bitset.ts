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
}
