import { createHash } from 'node:crypto';
import { decodeChunk } from './chunk-codec.js';
import { ChunkTable } from './chunk-table.js';
import { ChunkDigestError, MalformedLayerError } from './errors.js';
import type { ExtentList } from './extent.js';
import { decodeExtentIndex } from './extent-index.js';
import { decodeHeader } from './header.js';
import { CHUNK_ENTRY_SIZE, EXTENT_ENTRY_SIZE, HEADER_SIZE, SECTOR_SIZE, TRAILER_SIZE, VERSION_MAJOR, VERSION_MINOR_COMPRESSED } from './layer-spec.js';
import type { RandomAccess } from './random-access.js';
import { decodeTrailer, type LayerTrailer } from './trailer.js';

export interface MetaLocation {
  offset: number;
  length: number;
}

/**
 * A validated view of one layer blob. Opening reads only the metadata at the tail
 * (one read when its location is known from the manifest, two otherwise); data is
 * read chunk by chunk, each chunk checked against its digest.
 */
export class LayerReader {
  private constructor(
    readonly source: RandomAccess,
    readonly trailer: LayerTrailer,
    readonly extents: ExtentList,
    readonly chunks: ChunkTable,
  ) {}

  static async open(source: RandomAccess, meta?: MetaLocation): Promise<LayerReader> {
    const size = source.size;
    if (size < HEADER_SIZE + TRAILER_SIZE) throw new MalformedLayerError('E_LAYER_TRUNCATED', `layer blob of ${size} bytes is shorter than header + trailer`);
    let metaBytes: Buffer;
    let trailer: LayerTrailer;
    if (meta && meta.offset + meta.length === size && meta.length >= TRAILER_SIZE) {
      metaBytes = await source.read(meta.offset, meta.length);
      trailer = decodeTrailer(metaBytes.subarray(metaBytes.length - TRAILER_SIZE));
      if (trailer.indexOffset !== meta.offset) throw new MalformedLayerError('E_LAYER_BAD_FIELD', 'metadata location in the manifest does not match the trailer');
    } else {
      trailer = decodeTrailer(await source.read(size - TRAILER_SIZE, TRAILER_SIZE));
      checkLayout(trailer, size);
      metaBytes = await source.read(trailer.indexOffset, size - trailer.indexOffset);
    }
    checkLayout(trailer, size);
    const tableStart = trailer.chunkTableOffset - trailer.indexOffset;
    const indexBytes = metaBytes.subarray(0, tableStart);
    const tableBytes = metaBytes.subarray(tableStart, metaBytes.length - TRAILER_SIZE);
    const digest = createHash('sha256').update(indexBytes).update(tableBytes).digest();
    if (!digest.equals(trailer.metaDigest)) throw new MalformedLayerError('E_LAYER_META_DIGEST', 'extent index / chunk table do not match the digest in the trailer');
    const extents = decodeExtentIndex(indexBytes, {
      virtualLimit: Math.ceil(trailer.virtualSize / SECTOR_SIZE) * SECTOR_SIZE,
      dataOffset: trailer.dataOffset,
      dataEnd: trailer.dataOffset + trailer.dataLength,
    });
    const chunks = ChunkTable.decode(Buffer.from(tableBytes), trailer.chunkSize, trailer.dataOffset, trailer.dataLength);
    if (chunks.compressed && (trailer.versionMinor ?? 0) < VERSION_MINOR_COMPRESSED) {
      throw new MalformedLayerError('E_LAYER_BAD_FIELD', `a ${VERSION_MAJOR}.${trailer.versionMinor} layer holds compressed chunks (compression came with ${VERSION_MAJOR}.${VERSION_MINOR_COMPRESSED})`);
    }
    if (trailer.indexOffset !== trailer.dataOffset + chunks.storedLength) {
      throw new MalformedLayerError('E_LAYER_OUT_OF_BOUNDS', `layer layout inconsistent: the chunks' stored lengths add up to ${chunks.storedLength} bytes, the data region holds ${trailer.indexOffset - trailer.dataOffset}`);
    }
    return new LayerReader(source, trailer, extents, chunks);
  }

  get virtualSize(): number {
    return this.trailer.virtualSize;
  }

  get metaLocation(): MetaLocation {
    return { offset: this.trailer.indexOffset, length: this.source.size - this.trailer.indexOffset };
  }

  /** Reads chunk i's stored bytes and checks them against the chunk table. */
  async readChunk(i: number): Promise<Buffer> {
    const data = await this.source.read(this.chunks.offset(i), this.chunks.length(i));
    this.checkChunk(i, data);
    return data;
  }

  /** Chunk i's data: its stored bytes, checked, then decoded. */
  async readChunkData(i: number): Promise<Buffer> {
    return decodeChunk(await this.readChunk(i), this.chunks.compression(i), this.chunks.dataSize(i));
  }

  checkChunk(i: number, data: Buffer): void {
    const digest = createHash('sha256').update(data).digest();
    if (!digest.equals(this.chunks.digest(i))) {
      throw new ChunkDigestError(i, this.chunks.offset(i), `chunk ${i} (blob offset ${this.chunks.offset(i)}) does not match its digest`);
    }
  }

  /** Checks the header at offset 0 (not needed for reads; `verify` wants the whole blob sound). */
  async checkHeader(): Promise<void> {
    const h = decodeHeader(await this.source.read(0, HEADER_SIZE));
    if (h.virtualSize !== this.trailer.virtualSize || h.chunkSize !== this.trailer.chunkSize || !h.legacyUuid.equals(this.trailer.legacyUuid)) {
      throw new MalformedLayerError('E_LAYER_BAD_FIELD', 'header and trailer disagree');
    }
  }
}

/** The regions must tile the blob exactly: header, data, index, chunk table, trailer. */
function checkLayout(t: LayerTrailer, size: number): void {
  const fail = (what: string) => {
    throw new MalformedLayerError('E_LAYER_OUT_OF_BOUNDS', `layer layout inconsistent: ${what}`);
  };
  if (t.dataOffset !== HEADER_SIZE) fail(`data offset ${t.dataOffset}`);
  if (t.dataLength % SECTOR_SIZE !== 0) fail(`data length ${t.dataLength} not sector aligned`);
  // Compressed chunks make the stored region shorter than the data; the chunk table says by how much.
  if (t.indexOffset < t.dataOffset || t.indexOffset > t.dataOffset + t.dataLength) fail(`index offset ${t.indexOffset}`);
  if (t.chunkTableOffset !== t.indexOffset + t.extentCount * EXTENT_ENTRY_SIZE) fail(`chunk table offset ${t.chunkTableOffset}`);
  if (t.chunkTableOffset + t.chunkCount * CHUNK_ENTRY_SIZE + TRAILER_SIZE !== size) fail(`blob size ${size} does not match the trailer`);
}
