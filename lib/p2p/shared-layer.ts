import type { ChunkTable } from '../format/chunk-table.js';

/**
 * A layer as the swarm sees it: which chunks are held, their bytes from local storage
 * only, news of chunks as they arrive, and a way to fetch chunks through this node's own
 * sources when a neighbour asks its owner for them. LazyLayer is one (its cache holds only
 * verified chunks).
 */
export interface SharedLayer {
  readonly blob: string;
  readonly chunks: ChunkTable;
  isLocal(chunk: number): boolean;
  /** All local chunks, ChunkBitset.toBytes layout (the HAVE bitfield). */
  localBits(): Buffer;
  /** Verified bytes of a local chunk, or undefined if it is not (any more) local. */
  readLocal(chunk: number): Promise<Buffer | undefined>;
  /** Calls `listener` with every chunk that becomes local; returns the unsubscribe. */
  onLocal(listener: (chunk: number) => void): () => void;
  /** Makes chunks [first, first+count) local through this node's source chain (joining fetches in flight). */
  fetchChunks(first: number, count: number, demand: boolean): Promise<void>;
}
