import { createRequire } from 'node:module';
import { decompress as fzstdDecompress } from 'fzstd';
import type * as Lz4Napi from 'lz4-napi';
import type * as ZstdNapi from 'zstd-napi';
import { ChunkDecodeError, CodecError, CodecUnavailableError } from './errors.js';
import { Compression, DEFAULT_ZSTD_LEVEL, MAX_CHUNK_SIZE, MAX_ZSTD_LEVEL } from './layer-spec.js';
import { decodeLz4Block } from './lz4-block.js';

/**
 * The one place that turns a chunk's data into its stored bytes and back (layer-v1.md §Chunk
 * table). Encoding needs the native codecs; decoding falls back to fzstd and a pure LZ4 decoder,
 * so a host without the addons can still read every layer, only slower.
 */

export type CodecName = 'none' | 'zstd' | 'lz4';

export interface CodecChoice {
  codec: CodecName;
  /** zstd only: 1..MAX_ZSTD_LEVEL, DEFAULT_ZSTD_LEVEL when absent. */
  level?: number;
}

export interface EncodedChunk {
  compression: Compression;
  stored: Buffer;
}

export interface CodecBackends {
  zstd: { encode: 'native' | null; decode: 'native' | 'fzstd' };
  lz4: { encode: 'native' | null; decode: 'native' | 'pure' };
}

const ACCEPTED_FORMS = `none, lz4, zstd or zstd:<level 1..${MAX_ZSTD_LEVEL}>`;

export function parseCodec(text: string): CodecChoice {
  if (text === 'none' || text === 'lz4') return { codec: text };
  if (text === 'zstd') return { codec: 'zstd', level: DEFAULT_ZSTD_LEVEL };
  const level = /^zstd:([1-9][0-9]?)$/.exec(text);
  if (level && Number(level[1]) <= MAX_ZSTD_LEVEL) return { codec: 'zstd', level: Number(level[1]) };
  throw new CodecError(`unknown codec '${text}': expected ${ACCEPTED_FORMS}`);
}

export function formatCodec(choice: CodecChoice): string {
  return choice.codec === 'zstd' ? `zstd:${choice.level ?? DEFAULT_ZSTD_LEVEL}` : choice.codec;
}

// --- native backends: loaded on first use, once; a failed load is remembered with its reason ---

type Native<T> = { mod: T; why?: undefined } | { mod: null; why: string };

const nativeRequire = createRequire(import.meta.url);

function lazyNative<T>(pkg: string): () => Native<T> {
  let loaded: Native<T> | undefined;
  return () => (loaded ??= loadNative<T>(pkg));
}

function loadNative<T>(pkg: string): Native<T> {
  // Tests set it to run the pure decoders (and the missing-encoder errors) on a host that has the addons.
  if (process.env.LAZYBD_NATIVE_CODECS === '0') return { mod: null, why: 'LAZYBD_NATIVE_CODECS=0' };
  try {
    return { mod: nativeRequire(pkg) as T };
  } catch (e) {
    return { mod: null, why: `${pkg} failed to load: ${(e as Error).message.split('\n')[0]}` };
  }
}

const zstdNative = lazyNative<typeof ZstdNapi>('zstd-napi');
const lz4Native = lazyNative<typeof Lz4Napi>('lz4-napi');

/** For `lazybd --version` and status: which implementation each direction of each codec uses. */
export function codecBackends(): CodecBackends {
  const zstd = zstdNative().mod !== null;
  const lz4 = lz4Native().mod !== null;
  return {
    zstd: { encode: zstd ? 'native' : null, decode: zstd ? 'native' : 'fzstd' },
    lz4: { encode: lz4 ? 'native' : null, decode: lz4 ? 'native' : 'pure' },
  };
}

/** One line for `lazybd --version`. */
export function codecLine(): string {
  const { zstd, lz4 } = codecBackends();
  const side = (c: { encode: string | null; decode: string }) => `encode ${c.encode ?? 'unavailable'}, decode ${c.decode}`;
  return `codecs: zstd (${side(zstd)}), lz4 (${side(lz4)})`;
}

// --- encoding ---

/**
 * The stored form of one chunk: compressed when that is strictly smaller, else the data itself
 * (compression None), so a stored chunk is never larger than its data.
 */
export function compressChunk(data: Buffer, choice: CodecChoice): EncodedChunk {
  checkChoice(choice);
  let encoded: EncodedChunk;
  switch (choice.codec) {
    case 'none':
      return { compression: Compression.None, stored: data };
    case 'zstd': {
      const level = choice.level ?? DEFAULT_ZSTD_LEVEL;
      // contentSizeFlag is zstd-napi's default; stated because the format requires it (decodeChunk rejects frames without it).
      const stored = encoder(zstdNative(), 'zstd').compress(data, { compressionLevel: level, contentSizeFlag: true });
      encoded = { compression: Compression.Zstd, stored };
      break;
    }
    case 'lz4':
      // lz4-napi prefixes the block with its decoded size (u32 LE); the format keeps that in the chunk table instead.
      encoded = { compression: Compression.Lz4, stored: encoder(lz4Native(), 'lz4').compressSync(data).subarray(4) };
      break;
  }
  return encoded.stored.length < data.length ? encoded : { compression: Compression.None, stored: data };
}

function checkChoice(choice: CodecChoice): void {
  const { codec, level } = choice;
  if (codec !== 'none' && codec !== 'zstd' && codec !== 'lz4') throw new CodecError(`unknown codec '${String(codec)}': expected ${ACCEPTED_FORMS}`);
  if (level === undefined) return;
  if (codec !== 'zstd') throw new CodecError(`codec ${codec} takes no level: expected ${ACCEPTED_FORMS}`);
  if (!Number.isInteger(level) || level < 1 || level > MAX_ZSTD_LEVEL) throw new CodecError(`zstd level ${level} out of range: expected ${ACCEPTED_FORMS}`);
}

function encoder<T>(native: Native<T>, codec: CodecName): T {
  if (native.mod === null) throw new CodecUnavailableError(codec, `cannot compress with ${codec}: its native encoder is unavailable (${native.why})`);
  return native.mod;
}

// --- decoding ---

/**
 * Exactly the `dataLength` bytes a chunk's stored bytes encode, or ChunkDecodeError. The stored
 * bytes passed their digest before they got here, so a failure means a broken writer, not a bad
 * transfer; the checks still assume a hostile writer: nothing is allocated beyond `dataLength`.
 */
export function decodeChunk(stored: Buffer, compression: Compression, dataLength: number): Buffer {
  if (!Number.isInteger(dataLength) || dataLength < 0 || dataLength > MAX_CHUNK_SIZE) {
    throw new ChunkDecodeError(`chunk length ${dataLength} is not between 0 and ${MAX_CHUNK_SIZE}`);
  }
  let data: Buffer;
  switch (compression) {
    case Compression.None:
      data = stored;
      break;
    case Compression.Zstd:
      checkZstdFrame(stored, dataLength);
      data = decoding('zstd', () => {
        const native = zstdNative().mod;
        return native ? native.decompress(stored) : decodeZstdPure(stored, dataLength);
      });
      break;
    case Compression.Lz4:
      data = decoding('lz4', () => decodeLz4(stored, dataLength));
      break;
    default:
      throw new ChunkDecodeError(`unknown compression ${compression as number}: expected 0 (none), 1 (zstd) or 2 (lz4)`);
  }
  if (data.length !== dataLength) {
    throw new ChunkDecodeError(`${compressionName(compression)} chunk holds ${data.length} bytes, its entry says ${dataLength}`);
  }
  return data;
}

/**
 * fzstd into a buffer of the frame's content size, which the caller checked against the chunk's
 * length. fzstd cannot tell how many bytes it wrote: a frame whose blocks produce fewer bytes than
 * its header states leaves the rest zero (never stale memory), where the native decoder rejects it.
 */
export function decodeZstdPure(stored: Buffer, dataLength: number): Buffer {
  const out = Buffer.alloc(dataLength);
  fzstdDecompress(stored, out);
  return out;
}

function decodeLz4(stored: Buffer, dataLength: number): Buffer {
  const native = lz4Native().mod;
  if (native) {
    // lz4-napi wants the decoded size in front, and allocates exactly that.
    const framed = Buffer.allocUnsafe(4 + stored.length);
    framed.writeUInt32LE(dataLength, 0);
    stored.copy(framed, 4);
    return native.uncompressSync(framed);
  }
  // allocUnsafe is safe: a match only reads bytes already written, and a short block throws below.
  const out = Buffer.allocUnsafe(dataLength);
  const written = decodeLz4Block(stored, out);
  if (written !== dataLength) throw new Error(`lz4 block decodes to ${written} bytes, not ${dataLength}`);
  return out;
}

/** Runs a decoder, turning whatever it throws into ChunkDecodeError. */
function decoding(codec: CodecName, decode: () => Buffer): Buffer {
  try {
    return decode();
  } catch (e) {
    throw new ChunkDecodeError(`${codec} chunk is corrupt: ${(e as Error).message}`, { cause: e });
  }
}

function compressionName(compression: Compression): CodecName {
  return compression === Compression.Zstd ? 'zstd' : compression === Compression.Lz4 ? 'lz4' : 'none';
}

const ZSTD_MAGIC = 0xfd2fb528;
const ZSTD_MAX_BLOCK = 128 * 1024;
const DICT_ID_BYTES = [0, 1, 2, 4];

/**
 * Checks that `stored` is exactly one zstd frame whose header states `dataLength` as its content
 * size (RFC 8878 §3.1.1), walking the block headers to find where the frame ends. Done before any
 * decoder runs: the decoders size their output from the header, and both would decode a second
 * frame after the first.
 */
function checkZstdFrame(stored: Buffer, dataLength: number): void {
  const fail = (why: string) => new ChunkDecodeError(`zstd chunk: ${why}`);
  if (stored.length < 4 || stored.readUInt32LE(0) !== ZSTD_MAGIC) throw fail('bad magic, not a zstd frame');
  if (stored.length < 5) throw fail('truncated frame header');
  const descriptor = stored[4];
  if (descriptor & 0x08) throw fail('reserved bit set in the frame header');
  const singleSegment = (descriptor >> 5) & 1;
  const sizeFlag = descriptor >> 6;
  const dictBytes = DICT_ID_BYTES[descriptor & 3];
  const sizeBytes = sizeFlag === 0 ? singleSegment : 1 << sizeFlag;
  let at = 5 + (singleSegment ? 0 : 1); // the window descriptor is absent in single-segment frames
  if (stored.length < at + dictBytes + sizeBytes) throw fail('truncated frame header');
  if (dictBytes > 0 && stored.readUIntLE(at, dictBytes) !== 0) throw fail('frame needs a dictionary');
  at += dictBytes;
  if (sizeBytes === 0) throw fail('frame header states no content size');
  const contentSize =
    sizeBytes === 8 ? stored.readBigUInt64LE(at) : BigInt(stored.readUIntLE(at, sizeBytes) + (sizeBytes === 2 ? 256 : 0));
  if (contentSize !== BigInt(dataLength)) throw fail(`frame content size ${contentSize} is not the chunk's length ${dataLength}`);
  at += sizeBytes;

  for (let last = 0; !last; ) {
    const block = at;
    if (stored.length - block < 3) throw fail(`truncated: block header at ${block} passes the end`);
    const header = stored.readUIntLE(block, 3);
    last = header & 1;
    const type = (header >> 1) & 3;
    const size = header >>> 3;
    if (type === 3) throw fail(`reserved block type at ${block}`);
    if (size > ZSTD_MAX_BLOCK) throw fail(`block at ${block} of ${size} bytes exceeds 128 KiB`);
    at = block + 3 + (type === 1 ? 1 : size); // an RLE block stores one byte, its size is the decoded length
    if (at > stored.length) throw fail(`truncated: block at ${block} passes the end`);
  }
  if ((descriptor >> 2) & 1) at += 4; // content checksum
  if (at > stored.length) throw fail('truncated: content checksum passes the end');
  if (at < stored.length) throw fail(`${stored.length - at} bytes after the frame (one frame per chunk)`);
}
