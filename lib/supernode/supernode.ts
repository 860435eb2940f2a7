import { join } from 'node:path';
import type { RegistryClientOptions } from '../registry/registry-client.js';
import { ChunkCache } from '../source/chunk-cache.js';
import { stderrSourceLogger, type SourceLogger } from '../source/source-logger.js';
import { BlobCatalog } from './blob-catalog.js';
import { BlobReader } from './blob-reader.js';
import { ManifestCache } from './manifest-cache.js';
import { PreheatJobs } from './preheat-jobs.js';
import { Upstreams } from './upstreams.js';

export interface SupernodeOptions {
  /** Where everything lives: chunks/, layouts/, manifests/, preheat/. */
  dir: string;
  /** Registries fronted, `host[:port]`; the first is the default for requests without `?ns=`. */
  upstreams: string[];
  /** Credentials, TLS and protocol for the upstream registries. */
  registry: Omit<RegistryClientOptions, 'registry'>;
  maxBytes: number;
  /** A chunk is fetched from the registry at most once per this window (0: until evicted). */
  refetchWindowMs?: number;
  /** How long a tag's manifest is served before the registry is asked again. Default 30 s. */
  manifestTtlMs?: number;
  /** Limit for one chunk run from the registry across retries. Default 30 s. */
  ioTimeoutMs?: number;
  log?: SourceLogger;
}

/**
 * The supernode's parts, wired: one chunk cache (the node's ChunkCache, crash-safe and
 * LRU), the blob layouts learnt, the manifest cache, the reader that fills the cache
 * through a registry-only source chain, and the preheat jobs. The HTTP front is separate
 * (SupernodeServer).
 */
export class Supernode {
  private constructor(
    readonly upstreams: Upstreams,
    readonly cache: ChunkCache,
    readonly manifests: ManifestCache,
    readonly catalog: BlobCatalog,
    readonly reader: BlobReader,
    readonly preheat: PreheatJobs,
  ) {}

  static async open(o: SupernodeOptions): Promise<Supernode> {
    const log = o.log ?? stderrSourceLogger;
    const upstreams = new Upstreams(o.upstreams, o.registry);
    const cache = await ChunkCache.open(join(o.dir, 'chunks'), { maxBytes: o.maxBytes, refetchWindowMs: o.refetchWindowMs });
    const manifests = await ManifestCache.open(join(o.dir, 'manifests'), { ttlMs: o.manifestTtlMs ?? 30_000, log });
    const catalog = await BlobCatalog.open(join(o.dir, 'layouts'), cache, log);
    const reader = new BlobReader({ cache, ioTimeoutMs: o.ioTimeoutMs ?? 30_000, log });
    const preheat = await PreheatJobs.open(join(o.dir, 'preheat'), { upstreams, manifests, catalog, reader, log });
    return new Supernode(upstreams, cache, manifests, catalog, reader, preheat);
  }

  async close(): Promise<void> {
    await this.preheat.close();
    this.reader.close();
    await this.upstreams.close();
    await this.cache.close();
  }
}
