import type { ChunkTable } from '../format/chunk-table.js';

export interface ChunkDedup {
  /** Chunk entries of all tables, and their stored bytes. */
  chunks: number;
  storedBytes: number;
  /** Distinct digests among them, and their stored bytes: what a node fetches and caches. */
  uniqueChunks: number;
  uniqueStoredBytes: number;
  /** storedBytes / uniqueStoredBytes (1 when nothing repeats). */
  ratio: number;
}

/**
 * How much the layers of an image share: chunks are named by digest in the cache, at the
 * supernode and between peers, so a repeated chunk (zero runs, files common to layers) is
 * moved and stored once.
 */
export function chunkDedup(tables: readonly ChunkTable[]): ChunkDedup {
  const seen = new Set<string>();
  const out = { chunks: 0, storedBytes: 0, uniqueChunks: 0, uniqueStoredBytes: 0 };
  for (const t of tables) {
    for (let i = 0; i < t.count; i++) {
      out.chunks++;
      out.storedBytes += t.length(i);
      const hex = t.digest(i).toString('hex');
      if (seen.has(hex)) continue;
      seen.add(hex);
      out.uniqueChunks++;
      out.uniqueStoredBytes += t.length(i);
    }
  }
  return { ...out, ratio: out.uniqueStoredBytes === 0 ? 1 : out.storedBytes / out.uniqueStoredBytes };
}
