import { MalformedLayerError } from './errors.js';
import { CHUNK_ENTRY_SIZE, Compression } from './layer-spec.js';

/**
 * Per-chunk digests over the data region (layer-v1.md §Chunk table). Chunk i holds the
 * data bytes [i*chunkSize, min((i+1)*chunkSize, dataLength)) of the region: the *data*
 * coordinates extents point into. What the blob stores for it, and what is fetched, hashed
 * and moved between nodes, is its *stored* range: the same bytes in an uncompressed layer,
 * else the chunks' stored bytes packed back to back from the region's start.
 */
export class ChunkTable {
  private constructor(
    /** The raw table bytes: entries are read in place, never copied into objects. */
    private readonly bytes: Buffer,
    readonly count: number,
    readonly chunkSize: number,
    readonly dataOffset: number,
    readonly dataLength: number,
    /** Blob offset of each chunk's stored bytes, and the end (count + 1 entries); absent when no chunk is compressed. */
    private readonly storedStarts: Float64Array | undefined,
  ) {}

  static decode(bytes: Buffer, chunkSize: number, dataOffset: number, dataLength: number): ChunkTable {
    const count = bytes.length / CHUNK_ENTRY_SIZE;
    if (!Number.isInteger(count)) throw new MalformedLayerError('E_LAYER_TRUNCATED', 'chunk table length is not a whole number of entries');
    if (count !== Math.ceil(dataLength / chunkSize)) {
      throw new MalformedLayerError('E_LAYER_BAD_FIELD', `chunk table has ${count} entries, data region needs ${Math.ceil(dataLength / chunkSize)}`);
    }
    let compressed = false;
    for (let i = 0; i < count; i++) {
      const at = i * CHUNK_ENTRY_SIZE;
      const compression = bytes[at + 36]!;
      const stored = bytes.readUInt32LE(at + 32);
      const size = Math.min(chunkSize, dataLength - i * chunkSize);
      if (compression === Compression.None) {
        if (stored !== size) throw new MalformedLayerError('E_LAYER_BAD_FIELD', `chunk ${i}: stored length ${stored} of an uncompressed chunk is not its length ${size}`);
      } else if (compression === Compression.Zstd || compression === Compression.Lz4) {
        // A chunk that does not shrink is stored raw, so every compressed one is smaller.
        if (stored === 0 || stored >= size) throw new MalformedLayerError('E_LAYER_BAD_FIELD', `chunk ${i}: compressed stored length ${stored} is not below its length ${size}`);
        compressed = true;
      } else {
        throw new MalformedLayerError('E_LAYER_BAD_FIELD', `chunk ${i}: unknown compression ${compression}`);
      }
    }
    return new ChunkTable(bytes, count, chunkSize, dataOffset, dataLength, compressed ? storedStarts(bytes, count, dataOffset) : undefined);
  }

  /**
   * `digests` holds the chunks' SHA-256 digests back to back; `stored`, when given, each
   * chunk's stored length and compression (else all are stored as they are).
   */
  static encode(digests: Buffer, chunkSize: number, dataLength: number, stored?: { lengths: Uint32Array; compressions: Uint8Array }): Buffer {
    const count = digests.length / 32;
    const b = Buffer.alloc(count * CHUNK_ENTRY_SIZE);
    for (let i = 0; i < count; i++) {
      const at = i * CHUNK_ENTRY_SIZE;
      digests.copy(b, at, i * 32, i * 32 + 32);
      b.writeUInt32LE(stored ? stored.lengths[i]! : Math.min(chunkSize, dataLength - i * chunkSize), at + 32);
      b[at + 36] = stored ? stored.compressions[i]! : Compression.None;
    }
    return b;
  }

  /** The table as stored (layer-v1.md §Chunk table). */
  get encoded(): Buffer {
    return this.bytes;
  }

  /** Whether any chunk is compressed (stored and data ranges then differ). */
  get compressed(): boolean {
    return this.storedStarts !== undefined;
  }

  /** Bytes the data region takes in the blob: the sum of the stored lengths. */
  get storedLength(): number {
    return this.storedStarts ? this.storedStarts[this.count]! - this.dataOffset : this.dataLength;
  }

  /** SHA-256 of chunk i's stored bytes. */
  digest(i: number): Buffer {
    return this.bytes.subarray(i * CHUNK_ENTRY_SIZE, i * CHUNK_ENTRY_SIZE + 32);
  }

  compression(i: number): Compression {
    return this.bytes[i * CHUNK_ENTRY_SIZE + 36] as Compression;
  }

  /** Blob offset of chunk i's stored bytes: what a fetch of the chunk asks for. */
  offset(i: number): number {
    return this.storedStarts ? this.storedStarts[i]! : this.dataOffset + i * this.chunkSize;
  }

  /** Length of chunk i's stored bytes. */
  length(i: number): number {
    return this.storedStarts ? this.storedStarts[i + 1]! - this.storedStarts[i]! : this.dataSize(i);
  }

  /** Where chunk i's data starts in data coordinates (blob offsets of an uncompressed layer). */
  dataStart(i: number): number {
    return this.dataOffset + i * this.chunkSize;
  }

  /** Length of chunk i's data (decoded). */
  dataSize(i: number): number {
    return Math.min(this.chunkSize, this.dataLength - i * this.chunkSize);
  }

  /** Index of the chunk holding data offset `physical` (which must be in the data region). */
  indexOf(physical: number): number {
    return Math.floor((physical - this.dataOffset) / this.chunkSize);
  }

  /**
   * Splits data range [physical, physical+length) at chunk boundaries: `part(i, from, at, n)` for
   * each chunk i it touches, `from` the offset in the chunk's data, `at` the offset in the range.
   */
  forEachDataPart(physical: number, length: number, part: ChunkPart): void {
    for (let i = this.indexOf(physical), end = physical + length; i < this.count && this.dataStart(i) < end; i++) {
      const start = Math.max(physical, this.dataStart(i));
      part(i, start - this.dataStart(i), start - physical, Math.min(end, this.dataStart(i) + this.dataSize(i)) - start);
    }
  }

  /** forEachDataPart for a range of blob offsets in the stored region: `from` is then the offset in the chunk's stored bytes. */
  forEachStoredPart(offset: number, length: number, part: ChunkPart): void {
    for (let i = this.indexOfStored(offset), end = offset + length; i < this.count && this.offset(i) < end; i++) {
      const start = Math.max(offset, this.offset(i));
      part(i, start - this.offset(i), start - offset, Math.min(end, this.offset(i) + this.length(i)) - start);
    }
  }

  /** Index of the chunk whose stored bytes hold blob offset `offset` (which must be in the stored region). */
  indexOfStored(offset: number): number {
    const starts = this.storedStarts;
    if (!starts) return this.indexOf(offset);
    let lo = 0;
    let hi = this.count - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (starts[mid]! <= offset) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }
}

/** One chunk's share of a range: chunk `i`, from offset `from` in it, to offset `at` of the range, `n` bytes. */
export type ChunkPart = (i: number, from: number, at: number, n: number) => void;

function storedStarts(bytes: Buffer, count: number, dataOffset: number): Float64Array {
  const starts = new Float64Array(count + 1);
  let at = dataOffset;
  for (let i = 0; i < count; i++) {
    starts[i] = at;
    at += bytes.readUInt32LE(i * CHUNK_ENTRY_SIZE + 32);
  }
  starts[count] = at;
  return starts;
}
