import { MalformedLayerError } from './errors.js';
import { TRAILER_MAGIC, TRAILER_SIZE, VERSION_MAJOR, VERSION_MINOR, isValidChunkSize } from './layer-spec.js';
import { readU64, writeU64 } from './u64.js';

/**
 * The fixed 128-byte trailer ending every layer blob (layer-v1.md §Trailer): from it
 * alone a lazy reader finds the metadata (extent index + chunk table), never the data.
 */
export interface LayerTrailerFields {
  virtualSize: number;
  chunkSize: number;
  dataOffset: number;
  dataLength: number;
  indexOffset: number;
  extentCount: number;
  chunkTableOffset: number;
  chunkCount: number;
  /** SHA-256 of the extent index bytes followed by the chunk table bytes. */
  metaDigest: Buffer;
  /** As in the header: VERSION_MINOR_COMPRESSED when the writer compresses; default VERSION_MINOR. */
  versionMinor?: number;
}

export interface LayerTrailer extends LayerTrailerFields {
  /** Bytes 112..128: zero since 1.1, a random uuid in 1.0 layers; must equal the header's. */
  legacyUuid: Buffer;
}

/** The trailer of a layer written now (1.1, or 1.2 with compression): the legacy uuid field stays zero. */
export function encodeTrailer(t: LayerTrailerFields): Buffer {
  const b = Buffer.alloc(TRAILER_SIZE);
  TRAILER_MAGIC.copy(b, 0);
  b.writeUInt16LE(VERSION_MAJOR, 8);
  b.writeUInt16LE(t.versionMinor ?? VERSION_MINOR, 10);
  b.writeUInt32LE(0, 12);
  writeU64(b, 16, t.virtualSize);
  b.writeUInt32LE(t.chunkSize, 24);
  writeU64(b, 32, t.dataOffset);
  writeU64(b, 40, t.dataLength);
  writeU64(b, 48, t.indexOffset);
  writeU64(b, 56, t.extentCount);
  writeU64(b, 64, t.chunkTableOffset);
  writeU64(b, 72, t.chunkCount);
  t.metaDigest.copy(b, 80, 0, 32);
  return b;
}

export function decodeTrailer(b: Buffer): LayerTrailer {
  if (b.length !== TRAILER_SIZE) throw new MalformedLayerError('E_LAYER_TRUNCATED', `layer trailer needs ${TRAILER_SIZE} bytes, got ${b.length}`);
  if (!b.subarray(0, 8).equals(TRAILER_MAGIC)) throw new MalformedLayerError('E_LAYER_BAD_MAGIC', 'not a lazybd layer (or truncated): bad trailer magic');
  const major = b.readUInt16LE(8);
  if (major !== VERSION_MAJOR) throw new MalformedLayerError('E_LAYER_BAD_VERSION', `unsupported layer format version ${major}.${b.readUInt16LE(10)}`);
  const chunkSize = b.readUInt32LE(24);
  if (!isValidChunkSize(chunkSize)) throw new MalformedLayerError('E_LAYER_BAD_FIELD', `invalid chunk size ${chunkSize}`);
  return {
    versionMinor: b.readUInt16LE(10),
    virtualSize: readU64(b, 16),
    chunkSize,
    dataOffset: readU64(b, 32),
    dataLength: readU64(b, 40),
    indexOffset: readU64(b, 48),
    extentCount: readU64(b, 56),
    chunkTableOffset: readU64(b, 64),
    chunkCount: readU64(b, 72),
    metaDigest: Buffer.from(b.subarray(80, 112)),
    legacyUuid: Buffer.from(b.subarray(112, 128)),
  };
}
