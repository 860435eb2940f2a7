/**
 * Constants of the lazybd layer format, version 1 (format-spec/layer-v1.md).
 * Every number a second implementation needs lives here and nowhere else.
 */
export const SECTOR_SIZE = 512;

export const HEADER_MAGIC = Buffer.from('LZBDLAYR', 'latin1');
export const TRAILER_MAGIC = Buffer.from('LZBDTRLR', 'latin1');
export const VERSION_MAJOR = 1;
/**
 * 1.1: the 16 bytes that held a random uuid in 1.0 are written as zero, so the same input
 * gives the same blob (layer-v1.md §Versions). 1.0 readers accept 1.1 layers unchanged.
 */
export const VERSION_MINOR = 1;

export const HEADER_SIZE = 512;
export const TRAILER_SIZE = 128;
export const EXTENT_ENTRY_SIZE = 24;
export const CHUNK_ENTRY_SIZE = 40;

/** Largest sector_count one index entry can hold (u32); longer extents are split. */
export const MAX_EXTENT_SECTORS = 0xffff_ffff;

export const MIN_CHUNK_SIZE = 4096;
export const MAX_CHUNK_SIZE = 16 * 1024 * 1024;
/** 64 KiB: see format-spec/layer-v1.md §Chunk size for the measurements behind it. */
export const DEFAULT_CHUNK_SIZE = 64 * 1024;

/** How a chunk's stored bytes encode its data (layer-v1.md §Chunk table, since 1.2). */
export const enum Compression {
  None = 0,
  /** One zstd frame (RFC 8878) whose header states the content size. */
  Zstd = 1,
  /** One LZ4 block (no frame, no size prefix): its decoded size is the chunk's length. */
  Lz4 = 2,
}

/**
 * 1.2: chunks may be compressed. Written only by layers that hold a compressed chunk, so an
 * uncompressed layer stays byte for byte (and digest for digest) what 1.1 wrote.
 */
export const VERSION_MINOR_COMPRESSED = 2;

/** Default zstd level of `--compress zstd`: see format-spec/layer-v1.md §Compression. */
export const DEFAULT_ZSTD_LEVEL = 3;
export const MAX_ZSTD_LEVEL = 19;

/** Offsets must stay exact in a JS number; larger files are refused, not misread. */
export const MAX_SAFE_OFFSET = Number.MAX_SAFE_INTEGER;

export const MEDIA_TYPE_LAYER = 'application/vnd.lazybd.layer.v1';
export const MEDIA_TYPE_CONFIG = 'application/vnd.lazybd.config.v1+json';
export const ANNOTATION_META_OFFSET = 'org.lazybd.layer.meta.offset';
export const ANNOTATION_META_LENGTH = 'org.lazybd.layer.meta.length';
export const ANNOTATION_META_DIGEST = 'org.lazybd.layer.meta.digest';

export function isValidChunkSize(n: number): boolean {
  return Number.isInteger(n) && n >= MIN_CHUNK_SIZE && n <= MAX_CHUNK_SIZE && (n & (n - 1)) === 0;
}
