import type { ChunkTable } from '../format/chunk-table.js';

/** The chunks a range request covers: sources that place chunks by digest (supernodes, peers) need them. */
export interface ChunkRun {
  table: ChunkTable;
  first: number;
  count: number;
}

/**
 * One link of the remote chain (peers, supernode, registry): returns the bytes of a
 * range of a blob, unverified. The chain checks every chunk against the layer's chunk
 * table before anything is used or cached, so a source may be wrong, never trusted.
 */
export interface BlobRangeSource {
  /** Short name for logs and metrics: 'registry', 'supernode', 'peer'. */
  readonly name: string;
  /** This source's own limit for one request, where it should be shorter than the chain's (a cache in front of the registry). */
  readonly attemptTimeoutMs?: number;
  /**
   * Exactly `length` bytes of `blob` ("sha256:…") at `offset`. Errors say whether another
   * try could help with a boolean `retryable` property (registry errors do; without it the
   * chain retries only known network error codes). `signal` aborts when the chain gives up
   * on the request (its attempt or I/O timeout); the chain stops waiting either way.
   * `run` names the chunks the range covers, exactly.
   */
  fetch(blob: string, offset: number, length: number, signal: AbortSignal, run: ChunkRun): Promise<Buffer>;
  /**
   * Called by the chain when chunks of a response this source returned (`response`, the
   * very Buffer `fetch` resolved with) failed verification, before it asks the next source.
   * Lets a source that picks among remotes (peers) blame the one that answered.
   */
  reportCorrupt?(response: Buffer, blob: string, chunks: readonly BlobRange[]): void;
}

export interface BlobRange {
  offset: number;
  length: number;
}
