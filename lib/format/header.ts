import { MalformedLayerError } from './errors.js';
import { HEADER_MAGIC, HEADER_SIZE, VERSION_MAJOR, VERSION_MINOR, isValidChunkSize } from './layer-spec.js';
import { readU64, writeU64 } from './u64.js';

/** The 512-byte header at offset 0 of a layer blob (layer-v1.md §Header). */
export interface LayerHeader {
  virtualSize: number;
  chunkSize: number;
  /** VERSION_MINOR_COMPRESSED when the writer compresses chunks; default VERSION_MINOR. */
  versionMinor?: number;
}

export interface DecodedLayerHeader extends LayerHeader {
  /** Bytes 32..48: zero since 1.1, a random uuid in 1.0 layers; must equal the trailer's. */
  legacyUuid: Buffer;
}

/** The header of a layer written now (1.1, or 1.2 with compression): the legacy uuid field stays zero. */
export function encodeHeader(h: LayerHeader): Buffer {
  const b = Buffer.alloc(HEADER_SIZE);
  HEADER_MAGIC.copy(b, 0);
  b.writeUInt16LE(VERSION_MAJOR, 8);
  b.writeUInt16LE(h.versionMinor ?? VERSION_MINOR, 10);
  b.writeUInt32LE(0, 12);
  writeU64(b, 16, h.virtualSize);
  b.writeUInt32LE(h.chunkSize, 24);
  b.writeUInt32LE(HEADER_SIZE, 28);
  return b;
}

export function decodeHeader(b: Buffer): DecodedLayerHeader {
  if (b.length < HEADER_SIZE) throw new MalformedLayerError('E_LAYER_TRUNCATED', `layer header needs ${HEADER_SIZE} bytes, got ${b.length}`);
  if (!b.subarray(0, 8).equals(HEADER_MAGIC)) throw new MalformedLayerError('E_LAYER_BAD_MAGIC', 'not a lazybd layer: bad header magic');
  const major = b.readUInt16LE(8);
  if (major !== VERSION_MAJOR) throw new MalformedLayerError('E_LAYER_BAD_VERSION', `unsupported layer format version ${major}.${b.readUInt16LE(10)}`);
  const chunkSize = b.readUInt32LE(24);
  if (!isValidChunkSize(chunkSize)) throw new MalformedLayerError('E_LAYER_BAD_FIELD', `invalid chunk size ${chunkSize}`);
  if (b.readUInt32LE(28) !== HEADER_SIZE) throw new MalformedLayerError('E_LAYER_BAD_FIELD', `invalid header size ${b.readUInt32LE(28)}`);
  return { virtualSize: readU64(b, 16), chunkSize, legacyUuid: Buffer.from(b.subarray(32, 48)) };
}
