import { decodeChunk } from '../format/chunk-codec.js';
import type { ChunkTable } from '../format/chunk-table.js';
import { Compression } from '../format/layer-spec.js';
import { chunkCacheHits, chunkCacheMisses, chunkFetchJoins } from '../metrics/metrics.js';
import { ChunkBitset } from './chunk-bitset.js';
import { ChunkDigestIndex } from './chunk-digest-index.js';
import type { ChunkCache, ChunkPin } from './chunk-cache.js';
import { DecodedChunks } from './decoded-chunks.js';
import type { FetchActivity } from './fetch-activity.js';
import type { LayerData } from './layer-data.js';
import type { SourceChain } from './source-chain.js';
import { stderrSourceLogger, type SourceLogger } from './source-logger.js';

export interface LazyLayerOptions {
  /** The layer blob's digest ("sha256:…"), as the sources know it. */
  blob: string;
  /** The layer's chunk table (from its metadata, already checked against the meta digest). */
  chunks: ChunkTable;
  cache: ChunkCache;
  chain: SourceChain;
  /** Upper bound of one remote request for adjacent missing chunks. Default 1 MiB. */
  maxRunBytes?: number;
  /** Where on-demand fetches are counted (the prefetcher and cache writes yield to them). Default: the cache's. */
  activity?: FetchActivity;
  /** Called with the index of every chunk a read touches (trace recording). */
  onChunkRead?: (chunk: number) => void;
  /** Pin the layer's chunks in the cache until `unpin()`/`close()`: nothing fetched for it is evicted. */
  pin?: boolean;
  /** Where compressed chunks are kept decoded (share one per process). Default: a small one of this layer's own. */
  decoded?: DecodedChunks;
  log?: SourceLogger;
}

const DONE = Promise.resolve();

/**
 * A layer whose blob is remote, read through the chunk cache and the source chain. Reads
 * take cached chunks from the cache (one pread each once verified); missing chunks are
 * gathered into runs of adjacent chunks, each fetched with one request, verified, cached
 * and copied out. Concurrent reads of a chunk share one fetch (keyed by digest, so equal
 * chunks of a layer are fetched once too).
 *
 * Which chunks are local is kept in a bitset, filled from the cache at construction
 * (no network needed to serve what is cached) and kept current as chunks are stored,
 * found corrupt, or evicted.
 */
export class LazyLayer implements LayerData {
  readonly blob: string;
  readonly chunks: ChunkTable;
  readonly activity: FetchActivity;
  private readonly cache: ChunkCache;
  private readonly chain: SourceChain;
  private readonly maxRunChunks: number;
  private readonly onChunkRead: ((chunk: number) => void) | undefined;
  private readonly log: SourceLogger;
  private readonly decoded: DecodedChunks;
  private readonly local: ChunkBitset;
  private localBytes = 0;
  private readonly stopListening: () => void;
  /** Finds every chunk of a digest: a layer may repeat a chunk (zeroes), and the cache holds it once. */
  private readonly byDigest: ChunkDigestIndex;
  /** Fetches by chunk digest, from the start until the cache holds the chunk (in memory or on disk). */
  private readonly inflight = new Map<string, InFlight>();
  private pinned: ChunkPin | undefined;
  private readonly localListeners = new Set<(chunk: number) => void>();
  /** Chunk digests in hex, the cache's keys: converting on every read would cost more than the rest of a cached read's bookkeeping (~100 bytes a chunk). */
  private readonly hexes: string[];

  constructor(options: LazyLayerOptions) {
    this.blob = options.blob;
    this.chunks = options.chunks;
    this.cache = options.cache;
    this.chain = options.chain;
    this.maxRunChunks = Math.max(1, Math.floor((options.maxRunBytes ?? 1 << 20) / this.chunks.chunkSize));
    this.activity = options.activity ?? options.cache.demand;
    this.onChunkRead = options.onChunkRead;
    this.log = options.log ?? stderrSourceLogger;
    this.decoded = options.decoded ?? new DecodedChunks(16 * this.chunks.chunkSize);
    this.local = new ChunkBitset(this.chunks.count);
    this.hexes = Array.from({ length: this.chunks.count }, (_, i) => this.chunks.digest(i).toString('hex'));
    this.hexes.forEach((hex, i) => {
      if (this.cache.has(hex)) this.markLocal(i);
    });
    if (options.pin) this.pinned = this.cache.pin(this.hexes);
    this.byDigest = new ChunkDigestIndex(this.chunks);
    this.stopListening = this.cache.onRemove((hex) => {
      for (const i of this.byDigest.find(hex)) this.markMissing(i);
    });
  }

  /** Stored bytes of the layer's data region (what fetching all of it moves). */
  get bytesTotal(): number {
    return this.chunks.storedLength;
  }

  get bytesLocal(): number {
    return this.localBytes;
  }

  get complete(): boolean {
    return this.local.count === this.chunks.count;
  }

  isLocal(chunk: number): boolean {
    return this.local.has(chunk);
  }

  /** Which chunks are local now, one bit each (ChunkBitset.toBytes layout). */
  localBits(): Buffer {
    return this.local.toBytes();
  }

  /** Calls `listener` with each chunk that becomes local from now on (peers announce it). Returns the unsubscribe. */
  onLocal(listener: (chunk: number) => void): () => void {
    this.localListeners.add(listener);
    return () => this.localListeners.delete(listener);
  }

  /**
   * Chunk i from the cache only, never fetched: verified bytes (the cache hashes a file the
   * first time a process reads it), or undefined if it is not there or not sound.
   */
  async readLocal(i: number): Promise<Buffer | undefined> {
    const hex = this.hexOf(i);
    const chunk = Buffer.allocUnsafe(this.chunks.length(i));
    if (this.cache.has(hex) && (await this.cache.read(hex, 0, chunk, 0, chunk.length))) return chunk;
    this.markMissing(i);
    return undefined;
  }

  /** Layer data at data offset `physical` (LayerData): compressed chunks come decoded. */
  readInto(physical: number, target: Buffer, at: number, length: number): Promise<void> {
    const t = this.chunks;
    if (!t.compressed) return this.readStoredInto(physical, target, at, length);
    if (length <= 0) return DONE;
    if (physical < t.dataOffset || physical + length > t.dataOffset + t.dataLength) return Promise.reject(this.outside(physical, length));
    const first = t.indexOf(physical);
    const last = t.indexOf(physical + length - 1);
    if (first === last) return this.readDataPart(first, physical - t.dataStart(first), target, at, length);
    this.startFetches(first, last, true);
    const parts: Promise<void>[] = [];
    t.forEachDataPart(physical, length, (i, from, off, n) => parts.push(this.readDataPart(i, from, target, at + off, n)));
    return Promise.all(parts).then(noop);
  }

  /** The blob's stored bytes at blob offset `offset` (what a supernode serves), inside the stored data region. */
  readStoredInto(offset: number, target: Buffer, at: number, length: number): Promise<void> {
    if (length <= 0) return DONE;
    const t = this.chunks;
    if (offset < t.dataOffset || offset + length > t.dataOffset + t.storedLength) return Promise.reject(this.outside(offset, length));
    const first = t.indexOfStored(offset);
    const last = t.indexOfStored(offset + length - 1);
    if (first === last) return this.readPart(first, offset - t.offset(first), target, at, length);
    this.startFetches(first, last, true);
    const parts: Promise<void>[] = [];
    t.forEachStoredPart(offset, length, (i, from, off, n) => parts.push(this.readPart(i, from, target, at + off, n)));
    return Promise.all(parts).then(noop);
  }

  /** Copies part of chunk i's data: a chunk stored raw is its own data; a compressed one is decoded whole, once. */
  private readDataPart(i: number, offset: number, target: Buffer, at: number, length: number): Promise<void> {
    const t = this.chunks;
    const compression = t.compression(i);
    if (compression === Compression.None) return this.readPart(i, offset, target, at, length);
    this.onChunkRead?.(i);
    const load = async () => decodeChunk(await this.storedChunk(i), compression, t.dataSize(i));
    return this.decoded.copyInto(this.hexOf(i), load, offset, target, at, length) ?? DONE;
  }

  /** Chunk i's whole stored bytes, verified: from the cache, or fetched (joining a fetch in flight). */
  private async storedChunk(i: number): Promise<Buffer> {
    const hex = this.hexOf(i);
    for (;;) {
      if (this.cache.has(hex)) {
        const local = await this.readLocal(i);
        if (local) {
          chunkCacheHits.inc();
          return local;
        }
      }
      if (!this.inflight.has(hex)) this.startFetches(i, i, true);
      const pending = this.inflight.get(hex);
      // Not in flight: it landed in the cache since it was checked; read it from there.
      if (pending) {
        chunkCacheMisses.inc();
        if (pending.readers++ > 0) chunkFetchJoins.inc();
        return pending.data;
      }
    }
  }

  /** Makes the chunks under [physical, physical+length) local (NBD CACHE). */
  async warm(physical: number, length: number): Promise<void> {
    if (length <= 0) return;
    const [first, last] = this.chunkRange(physical, length);
    await this.fetchChunks(first, last - first + 1, true);
  }

  /**
   * Makes chunks [first, first+count) local. Background work (`demand` false) is not
   * counted in `activity`, so it does not make other background work wait.
   */
  async fetchChunks(first: number, count: number, demand = false): Promise<void> {
    const last = Math.min(first + count, this.chunks.count) - 1;
    this.startFetches(first, last, demand);
    const waits: Promise<unknown>[] = [];
    for (let i = first; i <= last; i++) {
      const pending = this.inflight.get(this.hexOf(i));
      if (pending) waits.push(pending.data);
    }
    await Promise.all(waits);
  }

  /** Lets the cache evict this layer's chunks again. */
  unpin(): void {
    this.pinned?.release();
    this.pinned = undefined;
  }

  close(): void {
    this.unpin();
    this.stopListening();
    this.localListeners.clear();
  }

  /** Copies part of chunk i's stored bytes into target: from the cache (hot path: no await before the pread), else fetched. */
  private readPart(i: number, offset: number, target: Buffer, at: number, length: number): Promise<void> {
    this.onChunkRead?.(i);
    const hex = this.hexOf(i);
    if (!this.cache.has(hex)) return this.fetchPart(i, hex, offset, target, at, length);
    return this.cache.read(hex, offset, target, at, length).then((hit) => {
      if (hit) {
        chunkCacheHits.inc();
        return;
      }
      this.markMissing(i);
      return this.fetchPart(i, hex, offset, target, at, length);
    });
  }

  private async fetchPart(i: number, hex: string, offset: number, target: Buffer, at: number, length: number): Promise<void> {
    let pending = this.inflight.get(hex);
    if (!pending) {
      this.startFetches(i, i, true);
      pending = this.inflight.get(hex);
      // Landed in the cache since it was checked: read it from there.
      if (!pending) return this.readPart(i, offset, target, at, length);
    }
    chunkCacheMisses.inc();
    if (pending.readers++ > 0) chunkFetchJoins.inc();
    const chunk = await pending.data;
    chunk.copy(target, at, offset, offset + length);
  }

  /** Starts fetches, in runs of adjacent chunks, for the chunks of [first, last] that are neither cached nor in flight. */
  private startFetches(first: number, last: number, demand: boolean): void {
    let runStart = -1;
    let runHexes: string[] = [];
    const flush = (): void => {
      if (runStart >= 0) this.fetchRun(runStart, runHexes, demand);
      runStart = -1;
      runHexes = [];
    };
    for (let i = first; i <= last; i++) {
      const hex = this.hexOf(i);
      if (this.cache.has(hex)) {
        this.markLocal(i);
        flush();
      } else if (this.inflight.has(hex) || runHexes.includes(hex)) {
        flush();
      } else {
        if (runStart < 0) runStart = i;
        runHexes.push(hex);
        if (runHexes.length === this.maxRunChunks) flush();
      }
    }
    flush();
  }

  /** One request for chunks [first, first+hexes.length); registers each in `inflight` until it is cached. */
  private fetchRun(first: number, hexes: string[], demand: boolean): void {
    const entries = hexes.map((hex) => {
      const entry = new InFlight();
      this.inflight.set(hex, entry);
      return entry;
    });
    if (demand) this.activity.begin();
    this.chain.fetchRun(this.blob, this.chunks, first, hexes.length).then(
      (buffers) => {
        if (demand) this.activity.end();
        buffers.forEach((chunk, j) => {
          const hex = hexes[j]!;
          // The cache answers for it from now on (from memory until it is written): readers and peers may ask.
          this.cache.put(hex, chunk).catch((err: Error) => {
            if (!this.cache.has(hex)) for (const i of this.byDigest.find(hex)) this.markMissing(i);
            this.log.warn(`caching chunk ${first + j} of ${this.blob}: ${err.message}`);
          });
          if (this.cache.has(hex)) for (const i of this.byDigest.find(hex)) this.markLocal(i);
          if (this.inflight.get(hex) === entries[j]) this.inflight.delete(hex);
          entries[j]!.resolve(chunk);
        });
      },
      (err: unknown) => {
        if (demand) this.activity.end();
        hexes.forEach((hex, j) => {
          if (this.inflight.get(hex) === entries[j]) this.inflight.delete(hex);
          entries[j]!.fail(err);
        });
      },
    );
  }

  private chunkRange(physical: number, length: number): [number, number] {
    const t = this.chunks;
    if (physical < t.dataOffset || physical + length > t.dataOffset + t.dataLength) throw this.outside(physical, length);
    return [t.indexOf(physical), t.indexOf(physical + length - 1)];
  }

  private outside(physical: number, length: number): RangeError {
    return new RangeError(`[${physical}, ${physical + length}) is outside the data region of ${this.blob}`);
  }

  private hexOf(i: number): string {
    return this.hexes[i]!;
  }

  private markLocal(i: number): void {
    if (!this.local.set(i)) return;
    this.localBytes += this.chunks.length(i);
    for (const listener of this.localListeners) listener(i);
  }

  private markMissing(i: number): void {
    if (this.local.clear(i)) this.localBytes -= this.chunks.length(i);
  }

}

function noop(): void {}

/** A chunk being fetched: its verified bytes, for the readers and warm/prefetch callers waiting on it. */
class InFlight {
  /** Reads waiting for the bytes: all but the first joined the fetch. */
  readers = 0;
  readonly data: Promise<Buffer>;
  resolve!: (chunk: Buffer) => void;
  fail!: (err: unknown) => void;

  constructor() {
    this.data = new Promise((resolve, reject) => {
      this.resolve = resolve;
      this.fail = reject;
    });
    // Waiters get the rejection; a fetch no one waits for must not crash the process.
    this.data.catch(() => {});
  }
}
