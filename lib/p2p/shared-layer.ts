import type { ChunkTable } from '../format/chunk-table.js';

/**
 * A layer as the swarm sees it: which chunks are held, their bytes from local storage
 * only, and news of chunks as they arrive. LazyLayer is one (its cache holds only
 * verified chunks); nothing here fetches from anywhere.
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
}
