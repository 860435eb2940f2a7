/**
 * Where a layer's bytes come from, by blob offset: the local blob file, or (for a lazily
 * pulled image) verified chunks from the cache and remote sources.
 */
export interface LayerData {
  /** Fills target[at, at+length) with the layer blob's bytes at [physical, physical+length). */
  readInto(physical: number, target: Buffer, at: number, length: number): Promise<void>;
  /** Makes [physical, physical+length) local without returning it (NBD_CMD_CACHE, prefetch). */
  warm?(physical: number, length: number): Promise<void>;
}
