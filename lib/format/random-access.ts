/** What a layer reader needs from wherever the blob lives: a local file, an HTTP Range source. */
export interface RandomAccess {
  readonly size: number;
  /** Exactly `length` bytes at `offset`, or a rejection. */
  read(offset: number, length: number): Promise<Buffer>;
}

/** Where a layer writer streams its blob, in order. */
export interface ByteSink {
  write(data: Buffer): Promise<void>;
}

/** A blob held in memory (test vectors, small metadata). */
export class BufferRandomAccess implements RandomAccess {
  constructor(private readonly bytes: Buffer) {}
  get size(): number {
    return this.bytes.length;
  }
  async read(offset: number, length: number): Promise<Buffer> {
    if (offset < 0 || offset + length > this.bytes.length) throw new RangeError(`read [${offset}, ${offset + length}) past end ${this.bytes.length}`);
    return this.bytes.subarray(offset, offset + length);
  }
}
