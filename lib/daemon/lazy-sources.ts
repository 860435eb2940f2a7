import type { Descriptor } from '../oci/manifest.js';
import type { LayerReader } from '../format/layer-reader.js';
import type { ImageOrigin } from '../image/origin.js';
import type { RemoteLayerFactory } from '../image/local-image.js';
import { parseReference } from '../oci/reference.js';
import { RegistryClient, type RegistryClientOptions } from '../registry/registry-client.js';
import { RegistryRangeSource } from '../registry/registry-range-source.js';
import type { ChunkCache } from '../source/chunk-cache.js';
import type { DecodedChunks } from '../source/decoded-chunks.js';
import { LazyLayer } from '../source/lazy-layer.js';
import { SourceChain } from '../source/source-chain.js';
import type { SupernodeSet } from '../supernode/supernode-source.js';
import { LazybdError } from '../errors.js';
import { PeerSource } from '../p2p/peer-source.js';
import type { PeerSwarm } from '../p2p/peer-swarm.js';

export interface LazySourcesOptions {
  cache: ChunkCache;
  /** Where compressed chunks are kept decoded, shared by every layer (and the daemon's local ones). */
  decoded: DecodedChunks;
  /** Registry settings beyond the host (credentials, CA, timeouts). */
  registry: Omit<RegistryClientOptions, 'registry'>;
  /** Force http for every registry (else what the pull recorded). */
  plainHttp?: boolean;
  /** No source delivered within this → EIO for the read, naming chunk and sources. */
  ioTimeoutMs: number;
  /** The datacenter's supernodes, asked before the registry. */
  supernodes?: SupernodeSet;
  /** Neighbours to fetch from (first in every chain) and share with; closed with these sources. */
  peers?: PeerSwarm;
  /** Runs last in close(): the owner's lock on the cache, say. */
  release?: () => Promise<void>;
}

/**
 * What a daemon needs to read lazily pulled layers: one chunk cache, one registry
 * client per registry host (connection pool and tokens shared by its images), and a
 * source chain per origin repository: peers (with P2P), the supernodes (if any), then the registry.
 */
export class LazySources {
  private readonly clients = new Map<string, RegistryClient>();
  private readonly peerSource: PeerSource | undefined;

  constructor(readonly options: LazySourcesOptions) {
    this.peerSource = options.peers && new PeerSource(options.peers);
  }

  /** Makes lazily pulled layers read through the cache and their origin registry; `onChunkRead` feeds trace recording. */
  layerFactory(onChunkRead?: (layer: number, chunk: number) => void): RemoteLayerFactory {
    return (d: Descriptor, reader: LayerReader, index: number, origin: ImageOrigin | undefined): LazyLayer => {
      if (!origin) throw new LazybdError('E_LAYER_NOT_LOCAL', `layer ${d.digest} is not local and the image records no origin registry`, { exitStatus: 2 });
      const layer = new LazyLayer({
        blob: d.digest,
        chunks: reader.chunks,
        cache: this.options.cache,
        chain: this.chainFor(origin),
        pin: true,
        decoded: this.options.decoded,
        onChunkRead: onChunkRead && ((chunk) => onChunkRead(index, chunk)),
      });
      this.options.peers?.share(layer).catch((e: Error) => process.stderr.write(`lazybd: warning: sharing ${d.digest} with peers: ${e.message}\n`));
      return layer;
    };
  }

  private chainFor(origin: ImageOrigin): SourceChain {
    const ref = parseReference(origin.ref);
    if (ref.kind !== 'remote') throw new LazybdError('E_ORIGIN_INVALID', `recorded origin ${origin.ref} is not a registry reference`);
    let client = this.clients.get(ref.registry);
    if (!client) {
      client = new RegistryClient({ ...this.options.registry, registry: ref.registry, plainHttp: this.options.plainHttp ?? origin.plainHttp });
      this.clients.set(ref.registry, client);
    }
    const peer = this.peerSource ? [this.peerSource] : [];
    const supernode = this.options.supernodes ? [this.options.supernodes.source(ref.registry, ref.repository)] : [];
    return new SourceChain({ sources: [...peer, ...supernode, new RegistryRangeSource(client, ref.repository)], ioTimeoutMs: this.options.ioTimeoutMs });
  }

  /** Peers offering chunks of any of these blobs; undefined without P2P. */
  peersFor(blobs: readonly string[]): number | undefined {
    return this.options.peers?.peersSharing(blobs);
  }

  async close(): Promise<void> {
    await this.options.peers?.destroy();
    await Promise.allSettled([...this.clients.values()].map((c) => c.close()));
    await this.options.supernodes?.close();
    await this.options.cache.close();
    await this.options.release?.();
  }
}
