import { createRequire } from 'node:module';
import type * as PromClient from 'prom-client';

// prom-client's index also loads its default process metrics (with @opentelemetry/api), the push
// gateway (node:http) and cluster aggregation, none of which lazybd uses: ~40 ms of every start-up
// on a 2-vCPU machine. Its metric classes are plain CommonJS files (the package has no exports map);
// were that layout to change, every metrics test would fail at this import.
const requireCjs = createRequire(import.meta.url);
const Counter = requireCjs('prom-client/lib/counter') as typeof PromClient.Counter;
const Gauge = requireCjs('prom-client/lib/gauge') as typeof PromClient.Gauge;
const Histogram = requireCjs('prom-client/lib/histogram') as typeof PromClient.Histogram;
const Registry = requireCjs('prom-client/lib/registry') as typeof PromClient.Registry;

/**
 * The process's one Prometheus registry and every lazybd metric. Labels stay few and
 * bounded: `source` is a link name ('cache', 'peer', 'supernode', 'registry'), `image` one
 * per served image, `command` one per NBD command, `outcome` ok | error | timeout.
 * Nothing here is per chunk, per blob or per client.
 */
export const metricsRegistry = new Registry();

/** Latency buckets from 100 µs (warm cache, local NBD) to 30 s (a stalled registry). */
const latencyBuckets = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export const sourceBytes = new Counter({
  name: 'lazybd_source_bytes_total',
  help: 'Bytes received from each remote chunk source (before verification)',
  labelNames: ['source'] as const,
  registers: [metricsRegistry],
});

export const sourceFetchSeconds = new Histogram({
  name: 'lazybd_source_fetch_seconds',
  help: 'Duration of one range request to a chunk source',
  labelNames: ['source', 'outcome'] as const,
  buckets: latencyBuckets,
  registers: [metricsRegistry],
});

export const chunkVerifyFailures = new Counter({
  name: 'lazybd_chunk_verify_failures_total',
  help: 'Chunks whose bytes did not match their digest, by the source that sent them (cache = a torn or corrupted cache file)',
  labelNames: ['source'] as const,
  registers: [metricsRegistry],
});

export const chunkCacheHits = new Counter({
  name: 'lazybd_chunk_cache_hits_total',
  help: 'Chunk reads served from the local chunk cache',
  registers: [metricsRegistry],
});

export const decodedChunkHits = new Counter({
  name: 'lazybd_decoded_chunk_hits_total',
  help: 'Reads of compressed chunks answered from decoded chunks in memory',
  registers: [metricsRegistry],
});

export const decodedChunkMisses = new Counter({
  name: 'lazybd_decoded_chunk_misses_total',
  help: 'Compressed chunks decoded (stored bytes read or fetched, then decompressed)',
  registers: [metricsRegistry],
});

export const chunkCacheMisses = new Counter({
  name: 'lazybd_chunk_cache_misses_total',
  help: 'Chunk reads that needed a remote fetch (or joined one in flight)',
  registers: [metricsRegistry],
});

export const imageChunkDedup = new Gauge({
  name: 'lazybd_image_chunk_dedup_ratio',
  help: "Stored bytes of an open image's chunk entries over those of its distinct chunks (fetched and cached once)",
  labelNames: ['image'] as const,
  registers: [metricsRegistry],
});

export const chunkCacheBytes = new Gauge({
  name: 'lazybd_chunk_cache_bytes',
  help: 'Bytes held in the chunk cache',
  registers: [metricsRegistry],
});

export const chunkCacheEvictions = new Counter({
  name: 'lazybd_chunk_cache_evictions_total',
  help: 'Chunk files removed to keep the cache under its size limit',
  registers: [metricsRegistry],
});

export const prefetchBytesDone = new Gauge({
  name: 'lazybd_prefetch_bytes_done',
  help: 'Bytes of the image layers that are local',
  labelNames: ['image'] as const,
  registers: [metricsRegistry],
});

export const prefetchBytesTotal = new Gauge({
  name: 'lazybd_prefetch_bytes_total',
  help: 'Bytes of the image layers in all',
  labelNames: ['image'] as const,
  registers: [metricsRegistry],
});

/** `command`: read, write, flush, trim, cache, write_zeroes, block_status, disc. */
export const nbdRequests = new Counter({
  name: 'lazybd_nbd_requests_total',
  help: 'NBD requests by command and outcome',
  labelNames: ['command', 'outcome'] as const,
  registers: [metricsRegistry],
});

export const nbdRequestSeconds = new Histogram({
  name: 'lazybd_nbd_request_seconds',
  help: 'NBD request latency, from the request header to the reply, by command',
  labelNames: ['command'] as const,
  buckets: latencyBuckets,
  registers: [metricsRegistry],
});

export const chunkFetchJoins = new Counter({
  name: 'lazybd_chunk_fetch_joins_total',
  help: 'Chunk reads that joined a fetch already in flight (single-flight) instead of starting one',
  registers: [metricsRegistry],
});

/** `route`: manifest, blob, preheat, metrics, base, other; `status`: the HTTP status. */
export const supernodeRequests = new Counter({
  name: 'lazybd_supernode_requests_total',
  help: 'Requests the supernode answered, by route and status',
  labelNames: ['route', 'status'] as const,
  registers: [metricsRegistry],
});

export const supernodeBytesServed = new Counter({
  name: 'lazybd_supernode_bytes_served_total',
  help: 'Body bytes the supernode sent to nodes, by what they were (manifest, blob)',
  labelNames: ['route'] as const,
  registers: [metricsRegistry],
});

export const supernodeUpstreamRequests = new Counter({
  name: 'lazybd_supernode_upstream_requests_total',
  help: 'Requests the supernode made to its upstream registries, by kind (manifest, range, blob, head, meta)',
  labelNames: ['kind'] as const,
  registers: [metricsRegistry],
});

export const supernodeStaleManifests = new Counter({
  name: 'lazybd_supernode_stale_manifests_total',
  help: 'Manifests served from the cache past their TTL because the registry could not be reached',
  registers: [metricsRegistry],
});

export const preheatJobs = new Gauge({
  name: 'lazybd_preheat_jobs',
  help: 'Preheat jobs by state',
  labelNames: ['state'] as const,
  registers: [metricsRegistry],
});

export const preheatChunksDone = new Counter({
  name: 'lazybd_preheat_chunks_done_total',
  help: 'Chunks preheat jobs made local (already cached ones included)',
  registers: [metricsRegistry],
});

export const preheatBytesDone = new Counter({
  name: 'lazybd_preheat_bytes_done_total',
  help: 'Bytes of the chunks preheat jobs made local (already cached ones included)',
  registers: [metricsRegistry],
});

/** `direction`: in (chunk bytes received from peers) | out (chunk bytes uploaded to peers). */
export const peerBytes = new Counter({
  name: 'lazybd_peer_bytes_total',
  help: 'Chunk bytes exchanged with P2P peers, by direction',
  labelNames: ['direction'] as const,
  registers: [metricsRegistry],
});

export const peersConnected = new Gauge({
  name: 'lazybd_peers_connected',
  help: 'P2P peers connected now',
  registers: [metricsRegistry],
});

export const peerBans = new Counter({
  name: 'lazybd_peer_bans_total',
  help: 'Peers banned for this daemon\'s lifetime (corrupt data or protocol violations)',
  registers: [metricsRegistry],
});

/** `role`: asked (this node asked a chunk owner to fetch for it) | served (this node fetched for a neighbour). */
export const peerFetchThrough = new Counter({
  name: 'lazybd_peer_fetch_through_total',
  help: 'Peer requests for chunks no peer held, sent to or served by their owner, by role',
  labelNames: ['role'] as const,
  registers: [metricsRegistry],
});

export const peerRequestSeconds = new Histogram({
  name: 'lazybd_peer_request_seconds',
  help: 'Duration of one chunk request to a peer, by outcome (ok | error | timeout)',
  labelNames: ['outcome'] as const,
  buckets: latencyBuckets,
  registers: [metricsRegistry],
});
