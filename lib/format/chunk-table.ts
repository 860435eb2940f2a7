import { MalformedLayerError } from './errors.js';
import { CHUNK_ENTRY_SIZE, Compression } from './layer-spec.js';

/**
 * Per-chunk digests over the data region (layer-v1.md §Chunk table). Chunk i covers
 * data bytes [i*chunkSize, min((i+1)*chunkSize, dataLength)) of the region.
 */
export class ChunkTable {
  private constructor(
    /** The raw table bytes: entries are read in place, never copied into objects. */
    private readonly bytes: Buffer,
    readonly count: number,
    readonly chunkSize: number,
    readonly dataOffset: number,
    readonly dataLength: number,
  ) {}

  static decode(bytes: Buffer, chunkSize: number, dataOffset: number, dataLength: number): ChunkTable {
    const count = bytes.length / CHUNK_ENTRY_SIZE;
    if (!Number.isInteger(count)) throw new MalformedLayerError('E_LAYER_TRUNCATED', 'chunk table length is not a whole number of entries');
    if (count !== Math.ceil(dataLength / chunkSize)) {
      throw new MalformedLayerError('E_LAYER_BAD_FIELD', `chunk table has ${count} entries, data region needs ${Math.ceil(dataLength / chunkSize)}`);
    }
    const table = new ChunkTable(bytes, count, chunkSize, dataOffset, dataLength);
    for (let i = 0; i < count; i++) {
      const at = i * CHUNK_ENTRY_SIZE;
      if (bytes[at + 36] !== Compression.None) throw new MalformedLayerError('E_LAYER_BAD_FIELD', `chunk ${i}: unknown compression ${bytes[at + 36]}`);
      if (bytes.readUInt32LE(at + 32) !== table.length(i)) throw new MalformedLayerError('E_LAYER_BAD_FIELD', `chunk ${i}: stored length does not match the data region`);
    }
    return table;
  }

  /** `digests` holds the chunks' SHA-256 digests back to back. */
  static encode(digests: Buffer, chunkSize: number, dataLength: number): Buffer {
    const count = digests.length / 32;
    const b = Buffer.alloc(count * CHUNK_ENTRY_SIZE);
    for (let i = 0; i < count; i++) {
      const at = i * CHUNK_ENTRY_SIZE;
      digests.copy(b, at, i * 32, i * 32 + 32);
      b.writeUInt32LE(Math.min(chunkSize, dataLength - i * chunkSize), at + 32);
      b[at + 36] = Compression.None;
    }
    return b;
  }

  /** The table as stored (layer-v1.md §Chunk table). */
  get encoded(): Buffer {
    return this.bytes;
  }

  digest(i: number): Buffer {
    return this.bytes.subarray(i * CHUNK_ENTRY_SIZE, i * CHUNK_ENTRY_SIZE + 32);
  }

  /** Blob offset of chunk i's stored bytes. */
  offset(i: number): number {
    return this.dataOffset + i * this.chunkSize;
  }

  length(i: number): number {
    return Math.min(this.chunkSize, this.dataLength - i * this.chunkSize);
  }

  /** Index of the chunk holding blob offset `physical` (which must be in the data region). */
  indexOf(physical: number): number {
    return Math.floor((physical - this.dataOffset) / this.chunkSize);
  }
}
