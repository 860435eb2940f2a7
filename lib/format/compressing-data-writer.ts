import { createHash } from 'node:crypto';
import type { ChunkCompressor } from './chunk-compressor.js';
import type { Compression } from './layer-spec.js';
import type { ByteSink } from './random-access.js';

/** Whole chunks sent to the compressor in one call: enough to keep its workers busy between calls. */
const BATCH_BYTES = 1 << 20;

export interface StoredChunks {
  /** SHA-256 of each chunk's stored bytes, back to back. */
  digests: Buffer;
  lengths: Uint32Array;
  compressions: Uint8Array;
  /** Sum of the stored lengths: the data region's size in the blob. */
  storedLength: number;
}

/**
 * The data region of a compressed layer: the data stream is cut into chunks, batches of
 * them are compressed off the main thread, and each chunk's stored bytes are written in
 * order, back to back. Several batches compress at once; writes are issued in order as
 * their batches come back, so the sink still places them in call order.
 */
export class CompressingDataWriter {
  private batch: Buffer;
  private fill = 0;
  /** Resolves once the previous batch's write has been issued (not completed). */
  private issued: Promise<void> = Promise.resolve();
  private readonly pending = new Set<Promise<void>>();
  private digests = Buffer.alloc(32 * 1024);
  private lengths = new Uint32Array(1024);
  private compressions = new Uint8Array(1024);
  private count = 0;
  private storedLength = 0;

  constructor(
    private readonly sink: ByteSink,
    private readonly compressor: ChunkCompressor,
    private readonly chunkSize: number,
  ) {
    this.batch = Buffer.allocUnsafe(Math.max(chunkSize, BATCH_BYTES));
  }

  /** Copies `data` in (the caller may reuse it at once); resolves when the batches it filled are written. */
  add(data: Buffer): Promise<void> {
    const sent: Promise<void>[] = [];
    for (let at = 0; at < data.length; ) {
      const take = Math.min(this.batch.length - this.fill, data.length - at);
      data.copy(this.batch, this.fill, at, at + take);
      this.fill += take;
      at += take;
      if (this.fill === this.batch.length) sent.push(this.send());
    }
    return sent.length === 0 ? Promise.resolve() : Promise.all(sent).then(noop);
  }

  /** Appends `length` zero bytes (padding to a chunk's place); resolves like add(). */
  addZeros(length: number): Promise<void> {
    const sent: Promise<void>[] = [];
    for (let left = length; left > 0; ) {
      const take = Math.min(this.batch.length - this.fill, left);
      this.batch.fill(0, this.fill, this.fill + take);
      this.fill += take;
      left -= take;
      if (this.fill === this.batch.length) sent.push(this.send());
    }
    return sent.length === 0 ? Promise.resolve() : Promise.all(sent).then(noop);
  }

  async finish(): Promise<StoredChunks> {
    if (this.fill > 0) this.send();
    await Promise.all([...this.pending]);
    return {
      digests: this.digests.subarray(0, this.count * 32),
      lengths: this.lengths.subarray(0, this.count),
      compressions: this.compressions.subarray(0, this.count),
      storedLength: this.storedLength,
    };
  }

  private send(): Promise<void> {
    const chunks = this.batch.subarray(0, this.fill);
    // A fresh buffer per batch: results stored raw may be views of this one until written.
    const compressed = this.compressor.compress(chunks, this.chunkSize);
    this.batch = Buffer.allocUnsafe(this.batch.length);
    this.fill = 0;
    let written!: Promise<void>;
    const issued = Promise.all([compressed, this.issued]).then(([results]) => {
      written = this.sink.write(Buffer.concat(results.map((r) => this.record(r.stored, r.compression))));
    });
    this.issued = issued.catch(noop);
    const done = issued.then(() => written);
    this.pending.add(done);
    done.then(
      () => this.pending.delete(done),
      () => this.pending.delete(done),
    );
    return done;
  }

  private record(stored: Buffer, compression: Compression): Buffer {
    if (this.count === this.lengths.length) this.grow();
    createHash('sha256').update(stored).digest().copy(this.digests, this.count * 32);
    this.lengths[this.count] = stored.length;
    this.compressions[this.count] = compression;
    this.count++;
    this.storedLength += stored.length;
    return stored;
  }

  private grow(): void {
    const digests = Buffer.alloc(this.digests.length * 2);
    this.digests.copy(digests);
    this.digests = digests;
    const lengths = new Uint32Array(this.lengths.length * 2);
    lengths.set(this.lengths);
    this.lengths = lengths;
    const compressions = new Uint8Array(this.compressions.length * 2);
    compressions.set(this.compressions);
    this.compressions = compressions;
  }
}

function noop(): void {}
