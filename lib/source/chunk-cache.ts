import { createHash, randomBytes } from 'node:crypto';
import { utimes } from 'node:fs';
import { mkdir, readdir, rename, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MAX_CHUNK_SIZE } from '../format/layer-spec.js';
import { chunkCacheBytes, chunkCacheEvictions, chunkVerifyFailures } from '../metrics/metrics.js';
import { FetchActivity } from './fetch-activity.js';
import { FileReadPool } from './file-read-pool.js';
import { WriteBehind, type WriteBehindOptions } from './write-behind.js';

export interface ChunkCacheOptions {
  /** Size limit in bytes; least recently used chunks that no one pins are evicted beyond it. */
  maxBytes: number;
  /**
   * Descriptors kept open for repeated reads (0: open + read + close each time, ~3× the cost
   * of a cached read). Default 512; raise it with the process's file limit (`ulimit -n`).
   */
  maxOpenFiles?: number;
  /**
   * A chunk stored less than this long ago is not evicted, even past `maxBytes`: so it is
   * fetched at most once per window (the supernode's `--refetch-window`). Default 0.
   */
  refetchWindowMs?: number;
  /**
   * Writes of fetched chunks wait (answered from memory meanwhile) until demand fetches pause.
   * Default 64 MiB held, 50 ms quiet, 2 s at most; `maxBytes: 0` writes at once.
   */
  writeBehind?: Partial<WriteBehindOptions>;
}

export interface CacheGcOptions {
  /** Limit to evict down to; default the cache's `maxBytes`. */
  maxBytes?: number;
  /** When given, chunks it rejects (and no one pins) are removed: e.g. not in any stored image. */
  keep?: (digestHex: string) => boolean;
  /** Read and hash every chunk not yet verified in this process; corrupt ones are removed. */
  verify?: boolean;
}

export interface CacheGcReport {
  removedFiles: number;
  removedBytes: number;
  corruptFiles: number;
  keptFiles: number;
  keptBytes: number;
}

/** Holds chunks in the cache until released (a serving image that is not complete). */
export interface ChunkPin {
  release(): void;
}

interface Entry {
  size: number;
  used: number;
  /** When the file was stored (ms since epoch; its mtime for files found on open). */
  stored: number;
  /** The file hashed to its name in this process; until then it may be torn. */
  verified: boolean;
  /** A verification in progress; concurrent first reads share it. Resolves to the chunk or undefined (dropped). */
  verifying?: Promise<Buffer | undefined>;
}

const MISS = Promise.resolve(false);
const HIT = Promise.resolve(true);
const HEX_NAME = /^[0-9a-f]{64}$/;
/** Parallel stat/unlink/verify calls while scanning: enough to keep the disk busy. */
const SCAN_PARALLEL = 32;

/**
 * Verified chunks on disk, content-addressed by sha256: `<dir>/chunks/ab/<hex>`.
 *
 * Crash safety: a chunk is written to `<dir>/tmp/` and renamed into place, without fsync.
 * A crash can still leave a torn or empty file after the rename, so the first read of every
 * chunk file in a process hashes it (a verified set is kept in memory); a file that does not
 * match its name is deleted and reported as a miss, and the caller fetches it again.
 *
 * LRU: use order of the unpinned chunks is kept in memory (a Map, oldest first; eviction
 * is O(1) a chunk) and rebuilt from file mtimes on open; a chunk's mtime is refreshed when
 * it is first verified in a process. Pinned chunks are never evicted; if pins hold more than
 * `maxBytes`, the cache grows past it rather than fail a read.
 *
 * Another process may open the same directory (`lazybd cache gc` beside a daemon): a file
 * it removes reads as a miss here, and temp files are only cleared once surely abandoned.
 */
export class ChunkCache {
  /** Every chunk present. */
  private readonly entries = new Map<string, Entry>();
  /** The present chunks no one pins, least recently used first: eviction takes from the front. */
  private lru = new Map<string, Entry>();
  /** Counts uses: `Entry.used` orders chunks coming back into `lru` when a pin is released. */
  private clock = 0;
  /** Pin counts by digest, for chunks present or still to come. */
  private readonly pins = new Map<string, number>();
  /** Chunks put and not yet in the index. */
  private readonly writing = new Map<string, Promise<void>>();
  /**
   * Written chunks join the cache in the order they were put, whatever order their writes
   * end in: so use order (and eviction) is the order chunks arrived, not a race of writes
   * released together by write-behind.
   */
  private addedInOrder: Promise<void> = Promise.resolve();
  /** Chunks put but not yet in place on disk: reads are answered from here. */
  private readonly held = new Map<string, Buffer>();
  /**
   * On-demand fetches of this cache's users (lazy layers count theirs here unless given
   * their own): cache writes, and prefetch, wait for them.
   */
  readonly demand = new FetchActivity();
  private readonly writeBehind: WriteBehind;
  private readonly unlinking = new Map<string, Promise<void>>();
  private readonly files: FileReadPool;
  private readonly removeListeners = new Set<(hex: string) => void>();
  private bytes = 0;

  private constructor(
    readonly dir: string,
    private readonly maxBytes: number,
    maxOpenFiles: number,
    private readonly refetchWindowMs: number,
    writeBehind: Partial<WriteBehindOptions>,
  ) {
    this.files = new FileReadPool(maxOpenFiles, (hex) => this.path(hex));
    this.writeBehind = new WriteBehind(this.demand, { maxBytes: 64 << 20, quietMs: 50, maxDelayMs: 2000, ...writeBehind });
  }

  static async open(dir: string, options: ChunkCacheOptions): Promise<ChunkCache> {
    const cache = new ChunkCache(dir, options.maxBytes, options.maxOpenFiles ?? 512, options.refetchWindowMs ?? 0, options.writeBehind ?? {});
    await mkdir(join(dir, 'tmp'), { recursive: true });
    await cache.removeStaleTemp();
    const found: { hex: string; size: number; mtime: number }[] = [];
    await eachParallel(Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0')), SCAN_PARALLEL, async (prefix) => {
      const sub = join(dir, 'chunks', prefix);
      for (const name of await readdirOrEmpty(sub)) {
        if (!HEX_NAME.test(name) || !name.startsWith(prefix)) continue;
        const st = await stat(join(sub, name)).catch(() => undefined);
        if (st?.isFile()) found.push({ hex: name, size: st.size, mtime: st.mtimeMs });
      }
    });
    found.sort((a, b) => a.mtime - b.mtime);
    for (const f of found) cache.add(f.hex, { size: f.size, used: ++cache.clock, stored: f.mtime, verified: false });
    chunkCacheBytes.set(cache.bytes);
    return cache;
  }

  get size(): { files: number; bytes: number } {
    return { files: this.entries.size, bytes: this.bytes };
  }

  /** Calls `listener` with every chunk removed (evicted, corrupt, collected). Returns the unsubscribe. */
  onRemove(listener: (hex: string) => void): () => void {
    this.removeListeners.add(listener);
    return () => this.removeListeners.delete(listener);
  }

  /** Whether a file for the chunk is present (not yet whether it is sound: `read` checks). */
  has(hex: string): boolean {
    return this.entries.has(hex) || this.held.has(hex);
  }

  /**
   * Copies [offset, offset+length) of the chunk into target[at…]. False on a miss: absent,
   * or the file turned out torn or corrupt (it is then deleted). A verified chunk costs
   * one pread.
   */
  read(hex: string, offset: number, target: Buffer, at: number, length: number): Promise<boolean> {
    const entry = this.entries.get(hex);
    if (!entry) return this.readHeld(hex, offset, target, at, length);
    entry.used = ++this.clock;
    if (this.lru.delete(hex)) this.lru.set(hex, entry);
    if (!entry.verified) {
      return (entry.verifying ??= this.verify(hex, entry)).then((chunk) => {
        if (!chunk || offset + length > chunk.length) return false;
        chunk.copy(target, at, offset, offset + length);
        return true;
      });
    }
    return this.files.read(hex, target, at, length, offset).then(
      (n) => n === length || this.lost(hex, entry),
      (err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') throw err;
        return this.lost(hex, entry);
      },
    );
  }

  /**
   * Stores a chunk the caller has verified against `hex`. Resolves once it is in place and
   * indexed (after the chunks put before it).
   */
  put(hex: string, data: Buffer): Promise<void> {
    if (this.entries.has(hex)) return Promise.resolve();
    const pending = this.writing.get(hex);
    if (pending) return pending;
    this.held.set(hex, data);
    const written = this.writeBehind.slot(data.length).then((done) => this.write(hex, data).finally(done));
    const previous = this.addedInOrder;
    const joined = written
      .then(() => previous)
      .then(() => this.addWritten(hex, data.length))
      .finally(() => {
        this.writing.delete(hex);
        this.held.delete(hex);
      });
    // A failed write joins nothing; those after it still wait for the ones before it.
    this.addedInOrder = joined.catch(() => previous);
    this.writing.set(hex, joined);
    return joined;
  }

  private readHeld(hex: string, offset: number, target: Buffer, at: number, length: number): Promise<boolean> {
    const data = this.held.get(hex);
    if (!data || offset + length > data.length) return MISS;
    data.copy(target, at, offset, offset + length);
    return HIT;
  }

  /** Keeps these chunks (present now or stored later) from eviction until released. */
  pin(hexes: Iterable<string>): ChunkPin {
    const held = [...hexes];
    for (const hex of held) {
      const n = this.pins.get(hex) ?? 0;
      this.pins.set(hex, n + 1);
      if (n === 0) this.lru.delete(hex);
    }
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        const back: [string, Entry][] = [];
        for (const hex of held) {
          const n = this.pins.get(hex)! - 1;
          if (n > 0) {
            this.pins.set(hex, n);
            continue;
          }
          this.pins.delete(hex);
          const entry = this.entries.get(hex);
          if (entry) back.push([hex, entry]);
        }
        this.returnToLru(back);
        this.evict(this.maxBytes);
      },
    };
  }

  /**
   * Housekeeping for `lazybd cache gc`: removes unreferenced chunks (with `keep`), corrupt
   * ones (with `verify`), then evicts down to the limit.
   */
  async gc(options: CacheGcOptions = {}): Promise<CacheGcReport> {
    const report: CacheGcReport = { removedFiles: 0, removedBytes: 0, corruptFiles: 0, keptFiles: 0, keptBytes: 0 };
    const before = this.size;
    await this.removeStaleTemp();
    const keep = options.keep;
    if (keep) {
      for (const [hex, entry] of this.entries) if (!keep(hex) && !this.pins.has(hex)) this.drop(hex, entry);
    }
    if (options.verify) {
      const unverified = [...this.entries].filter(([, e]) => !e.verified);
      await eachParallel(unverified, SCAN_PARALLEL, async ([hex, entry]) => {
        if (!(await (entry.verifying ??= this.verify(hex, entry)))) report.corruptFiles++;
      });
    }
    this.evict(options.maxBytes ?? this.maxBytes);
    await Promise.all(this.unlinking.values());
    report.removedFiles = before.files - this.entries.size;
    report.removedBytes = before.bytes - this.bytes;
    report.keptFiles = this.entries.size;
    report.keptBytes = this.bytes;
    return report;
  }

  /** Closes open descriptors and waits for writes and deletes in progress. */
  async close(): Promise<void> {
    this.writeBehind.flush();
    // Writes ending now evict, which starts more deletes: wait until none are left.
    while (this.writing.size + this.unlinking.size > 0) {
      await Promise.all([...this.writing.values(), ...this.unlinking.values()].map((p) => p.catch(() => {})));
    }
    this.files.closeAll();
  }

  /** A verified file that came up short or vanished (removed or truncated behind our back): a miss. */
  private lost(hex: string, entry: Entry): false {
    if (this.entries.get(hex) === entry) this.drop(hex, entry);
    return false;
  }

  /**
   * Removes what crashed writers left in tmp/. Only files older than a minute: a chunk is
   * written in milliseconds, and another process (a daemon, while the CLI runs gc) may be
   * writing there now.
   */
  private async removeStaleTemp(): Promise<void> {
    const tmp = join(this.dir, 'tmp');
    const stale = Date.now() - 60_000;
    await eachParallel(await readdir(tmp), SCAN_PARALLEL, async (name) => {
      const st = await stat(join(tmp, name)).catch(() => undefined);
      if (st && st.mtimeMs < stale) await rm(join(tmp, name), { force: true, recursive: true });
    });
  }

  private path(hex: string): string {
    return join(this.dir, 'chunks', hex.slice(0, 2), hex);
  }

  private async write(hex: string, data: Buffer): Promise<void> {
    await this.unlinking.get(hex);
    const tmp = join(this.dir, 'tmp', `${hex}.${randomBytes(6).toString('hex')}`);
    try {
      await writeFile(tmp, data);
      await rename(tmp, this.path(hex)).catch(async (err: NodeJS.ErrnoException) => {
        // Prefix directories are made on first use: making all 256 at open cost a fresh
        // cache 50-180 ms of a cold start.
        if (err.code !== 'ENOENT') throw err;
        await mkdir(join(this.dir, 'chunks', hex.slice(0, 2)), { recursive: true });
        await rename(tmp, this.path(hex));
      });
    } catch (err) {
      await unlink(tmp).catch(() => {});
      throw err;
    }
  }

  private addWritten(hex: string, size: number): void {
    if (this.entries.has(hex)) return;
    this.add(hex, { size, used: ++this.clock, stored: Date.now(), verified: true });
    this.evict(this.maxBytes);
    chunkCacheBytes.set(this.bytes);
  }

  /** Hashes the whole file; a mismatch (torn write, bit rot) deletes it. */
  private async verify(hex: string, entry: Entry): Promise<Buffer | undefined> {
    // No chunk is larger: a bigger file is not one of ours, and not worth reading.
    const chunk = Buffer.allocUnsafe(Math.min(entry.size, MAX_CHUNK_SIZE + 1));
    let n = -1;
    try {
      n = await this.files.read(hex, chunk, 0, chunk.length, 0);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        entry.verifying = undefined;
        throw err;
      }
    }
    if (this.entries.get(hex) !== entry) return n === entry.size && sha256Hex(chunk) === hex ? chunk : undefined;
    if (n === entry.size && sha256Hex(chunk) === hex) {
      entry.verified = true;
      entry.verifying = undefined;
      touch(this.path(hex));
      return chunk;
    }
    if (n >= 0) chunkVerifyFailures.inc({ source: 'cache' });
    this.drop(hex, entry);
    return undefined;
  }

  /** Merges chunks whose pin was released into `lru` by when they were last used. */
  private returnToLru(back: [string, Entry][]): void {
    if (back.length === 0) return;
    back.sort((a, b) => a[1].used - b[1].used);
    const merged = new Map<string, Entry>();
    let k = 0;
    for (const [hex, entry] of this.lru) {
      for (; k < back.length && back[k]![1].used < entry.used; k++) merged.set(back[k]![0], back[k]![1]);
      merged.set(hex, entry);
    }
    for (; k < back.length; k++) merged.set(back[k]![0], back[k]![1]);
    this.lru = merged;
  }

  private add(hex: string, entry: Entry): void {
    this.entries.set(hex, entry);
    if (!this.pins.has(hex)) this.lru.set(hex, entry);
    this.bytes += entry.size;
  }

  /**
   * Evicts least recently used, unpinned chunks until at most `limit` bytes remain (or only
   * pinned ones, and ones inside the refetch window, do).
   */
  private evict(limit: number): void {
    const young = this.refetchWindowMs > 0 ? Date.now() - this.refetchWindowMs : Infinity;
    // Chunks still inside the window are moved behind the others, each at most once.
    for (let skips = this.lru.size; this.bytes > limit && this.lru.size > 0; ) {
      const [hex, entry] = this.lru.entries().next().value!;
      if (entry.stored > young) {
        if (skips-- === 0) break;
        this.lru.delete(hex);
        this.lru.set(hex, entry);
        continue;
      }
      this.drop(hex, entry);
      chunkCacheEvictions.inc();
    }
  }

  private drop(hex: string, entry: Entry): void {
    this.entries.delete(hex);
    this.lru.delete(hex);
    this.bytes -= entry.size;
    chunkCacheBytes.set(this.bytes);
    this.files.forget(hex);
    const gone = unlink(this.path(hex))
      .catch(() => {})
      .finally(() => {
        if (this.unlinking.get(hex) === gone) this.unlinking.delete(hex);
      });
    this.unlinking.set(hex, gone);
    for (const listener of this.removeListeners) listener(hex);
  }
}

export function sha256Hex(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Refreshes mtime (the LRU order a restart rebuilds); best effort. */
function touch(path: string): void {
  const now = new Date();
  utimes(path, now, now, () => {});
}

async function eachParallel<T>(items: readonly T[], parallel: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(parallel, items.length) }, worker));
}

async function readdirOrEmpty(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}
