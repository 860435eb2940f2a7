import { RegistryRangeSource } from '../registry/registry-range-source.js';
import type { ChunkCache } from '../source/chunk-cache.js';
import { LazyLayer } from '../source/lazy-layer.js';
import { SourceChain } from '../source/source-chain.js';
import type { SourceLogger } from '../source/source-logger.js';
import type { BlobLayout } from './blob-layout.js';
import type { Upstream } from './upstreams.js';

/** Bytes handed to the HTTP response at a time: bounded memory per request, whatever the range. */
const WINDOW = 1 << 20;

export interface BlobReaderOptions {
  cache: ChunkCache;
  ioTimeoutMs: number;
  log: SourceLogger;
}

/**
 * Reads any byte range of a blob whose layout is known: head and tail from the layout,
 * the data region chunk by chunk through a LazyLayer over the supernode's cache, whose
 * chain is just the upstream registry. So everything a node gets is verified here first,
 * concurrent requests for a chunk make one registry fetch, and adjacent misses go in one
 * Range request.
 */
export class BlobReader {
  private readonly layers = new Map<string, LazyLayer>();
  private readonly chains = new Map<string, SourceChain>();

  constructor(private readonly options: BlobReaderOptions) {}

  /** The bytes [offset, offset+length) of the blob, in windows of at most 1 MiB. */
  async *read(upstream: Upstream, repository: string, layout: BlobLayout, offset: number, length: number): AsyncGenerator<Buffer> {
    const lazy = this.layer(upstream, repository, layout);
    const dataStart = layout.table.dataOffset;
    const dataEnd = dataStart + layout.table.storedLength;
    for (let at = offset, end = offset + length; at < end; ) {
      const n = Math.min(WINDOW, end - at);
      const out = Buffer.allocUnsafe(n);
      const parts: Promise<void>[] = [];
      // Head, data and tail parts of [at, at+n), each copied to its place in `out`.
      const headEnd = Math.min(at + n, dataStart);
      if (at < headEnd) layout.head.copy(out, 0, at, headEnd);
      const a = Math.max(at, dataStart);
      const b = Math.min(at + n, dataEnd);
      if (a < b) parts.push(lazy.readStoredInto(a, out, a - at, b - a));
      const tailStart = Math.max(at, dataEnd);
      if (tailStart < at + n) layout.tail.copy(out, tailStart - at, tailStart - dataEnd, at + n - dataEnd);
      await Promise.all(parts);
      yield out;
      at += n;
    }
  }

  /** Makes chunks [first, first+count) of the blob local (preheat). */
  warm(upstream: Upstream, repository: string, layout: BlobLayout, first: number, count: number): Promise<void> {
    return this.layer(upstream, repository, layout).fetchChunks(first, count);
  }

  /** Whether chunk i of the blob is in the cache. */
  isLocal(upstream: Upstream, repository: string, layout: BlobLayout, chunk: number): boolean {
    return this.layer(upstream, repository, layout).isLocal(chunk);
  }

  close(): void {
    for (const l of this.layers.values()) l.close();
    this.layers.clear();
  }

  private layer(upstream: Upstream, repository: string, layout: BlobLayout): LazyLayer {
    const key = `${upstream.ns}/${repository}@${layout.digest}`;
    let lazy = this.layers.get(key);
    if (!lazy) {
      lazy = new LazyLayer({ blob: layout.digest, chunks: layout.table, cache: this.options.cache, chain: this.chain(upstream, repository), log: this.options.log });
      this.layers.set(key, lazy);
    }
    return lazy;
  }

  private chain(upstream: Upstream, repository: string): SourceChain {
    const key = `${upstream.ns}/${repository}`;
    let chain = this.chains.get(key);
    if (!chain) {
      chain = new SourceChain({ sources: [new RegistryRangeSource(upstream.client, repository)], ioTimeoutMs: this.options.ioTimeoutMs, log: this.options.log });
      this.chains.set(key, chain);
    }
    return chain;
  }
}
