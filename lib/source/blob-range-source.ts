/**
 * One link of the remote chain (peers, supernode, registry): returns the bytes of a
 * range of a blob, unverified. The chain checks every chunk against the layer's chunk
 * table before anything is used or cached, so a source may be wrong, never trusted.
 */
export interface BlobRangeSource {
  /** Short name for logs and metrics: 'registry', 'supernode', 'peer'. */
  readonly name: string;
  fetch(blob: string, offset: number, length: number, signal: AbortSignal): Promise<Buffer>;
}
