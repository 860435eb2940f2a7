import { decodeChunk } from '../format/chunk-codec.js';
import { Compression } from '../format/layer-spec.js';
import type { LayerReader } from '../format/layer-reader.js';
import type { DecodedChunks } from './decoded-chunks.js';
import type { LayerData } from './layer-data.js';

/** What a local blob file offers: positioned reads into a caller's buffer. */
export interface BlobFile {
  readInto(offset: number, target: Buffer, at: number, length: number): Promise<void>;
}

/**
 * The data of a local layer blob with compressed chunks: a chunk stored raw is read in
 * place; a compressed one is read whole, checked against its digest (a local blob is no
 * more trusted than a remote one before it reaches a decompressor), decoded once and kept
 * in `decoded`. An uncompressed layer needs none of this: its blob file is its data.
 */
export class StoredBlobData implements LayerData {
  /** Chunk digests as cache keys, made on first use. */
  private readonly hexes: string[] = [];

  constructor(
    private readonly file: BlobFile,
    private readonly reader: LayerReader,
    private readonly decoded: DecodedChunks,
  ) {}

  readInto(physical: number, target: Buffer, at: number, length: number): Promise<void> {
    const t = this.reader.chunks;
    if (length <= 0) return DONE;
    if (physical < t.dataOffset || physical + length > t.dataOffset + t.dataLength) return Promise.reject(new RangeError(`[${physical}, ${physical + length}) is outside the data region`));
    let waits: Promise<void>[] | undefined;
    t.forEachDataPart(physical, length, (i, from, off, n) => {
      const waiting = this.readPart(i, from, target, at + off, n);
      if (waiting) (waits ??= []).push(waiting);
    });
    if (!waits) return DONE;
    return waits.length === 1 ? waits[0]! : Promise.all(waits).then(noop);
  }

  /** Copies part of chunk i's data into target: at once from a decoded chunk in memory, else a promise. */
  private readPart(i: number, offset: number, target: Buffer, at: number, length: number): Promise<void> | undefined {
    const t = this.reader.chunks;
    const compression = t.compression(i);
    if (compression === Compression.None) return this.file.readInto(t.offset(i) + offset, target, at, length);
    const hex = (this.hexes[i] ??= t.digest(i).toString('hex'));
    const load = async () => decodeChunk(await this.reader.readChunk(i), compression, t.dataSize(i));
    return this.decoded.copyInto(hex, load, offset, target, at, length);
  }
}

const DONE = Promise.resolve();

function noop(): void {}
