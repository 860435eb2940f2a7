import { Compression } from '../format/layer-spec.js';
import type { ChunkTable } from '../format/chunk-table.js';
import { chunkDedup, type ChunkDedup } from './chunk-dedup.js';
import type { LocalImage } from './local-image.js';

export interface ImageReport {
  ref: string;
  manifestDigest: string;
  virtualSize: number;
  chunkSize: number;
  /** Bytes of the device backed by layer data (what a full pull must move). */
  allocatedBytes: number;
  /** Chunks across the layers, and how much repeats: see chunkDedup. */
  dedup: ChunkDedup;
  layers: {
    digest: string;
    size: number;
    extents: number;
    chunks: number;
    chunkSize: number;
    /** The data the chunks hold, decoded (a compressed layer's includes the zero fill of its windows). */
    dataBytes: number;
    /** The data region as stored: below dataBytes when chunks are compressed. */
    storedBytes: number;
    /** Chunks by how they are stored. */
    compression: { none: number; zstd: number; lz4: number };
    metaBytes: number;
  }[];
}

export function inspectImage(image: LocalImage): ImageReport {
  let allocatedBytes = 0;
  for (const p of image.index.resolve(0, image.virtualSize)) if (p.kind === 'data') allocatedBytes += p.length;
  return {
    ref: image.ref,
    manifestDigest: image.manifestDescriptor.digest,
    virtualSize: image.virtualSize,
    chunkSize: image.config.chunkSize,
    allocatedBytes,
    dedup: chunkDedup(image.layers.map((l) => l.reader.chunks)),
    layers: image.layers.map((l) => ({
      digest: l.descriptor.digest,
      size: l.descriptor.size,
      extents: l.reader.extents.count,
      chunks: l.reader.chunks.count,
      chunkSize: l.reader.trailer.chunkSize,
      dataBytes: l.reader.trailer.dataLength,
      storedBytes: l.reader.chunks.storedLength,
      compression: countCompression(l.reader.chunks),
      metaBytes: l.reader.metaLocation.length,
    })),
  };
}

function countCompression(t: ChunkTable): { none: number; zstd: number; lz4: number } {
  const n = { none: 0, zstd: 0, lz4: 0 };
  for (let i = 0; i < t.count; i++) {
    const c = t.compression(i);
    if (c === Compression.Zstd) n.zstd++;
    else if (c === Compression.Lz4) n.lz4++;
    else n.none++;
  }
  return n;
}
