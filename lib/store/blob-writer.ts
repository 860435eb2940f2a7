import { createHash, randomBytes } from 'node:crypto';
import { write as writeCallback } from 'node:fs';
import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { ByteSink } from '../format/random-access.js';
import { fsyncDir } from './fsync-dir.js';

const BUFFER_SIZE = 1 << 20;
/**
 * After this many bytes a datasync starts in the background (one at a time), so the disk writes
 * the blob while the producer still hashes and the sync at commit has only the tail left.
 */
const SYNC_EVERY = 64 << 20;

/**
 * Writes a blob to a temp file in the store, hashing as it goes; `commit()` makes it
 * durable and visible under its digest in one rename, so readers never see half a blob.
 * Each write takes its place in the blob when called and goes out as a positional write,
 * so a producer may keep several in flight (hashing the next while the last is written);
 * each resolves once its bytes are no longer needed, and `commit()` waits for all of them.
 */
export class BlobWriter implements ByteSink {
  private readonly hash = createHash('sha256');
  private buffer = Buffer.allocUnsafe(BUFFER_SIZE);
  private fill = 0;
  /** Blob offset of buffer[0]. */
  private bufferAt = 0;
  private size = 0;
  private readonly inflight = new Set<Promise<void>>();
  private failure: unknown = null;
  private unsynced = 0;
  private syncing = false;
  private done = false;

  private constructor(
    private readonly handle: FileHandle,
    private readonly tempPath: string,
    private readonly blobDir: string,
  ) {}

  static async create(tempDir: string, blobDir: string): Promise<BlobWriter> {
    const tempPath = join(tempDir, `blob-${process.pid}-${randomBytes(6).toString('hex')}`);
    return new BlobWriter(await open(tempPath, 'wx'), tempPath, blobDir);
  }

  get bytesWritten(): number {
    return this.size;
  }

  /** Appends `data`; resolves when `data` may be reused (copied, or written). Rejects after any earlier write failed. */
  write(data: Buffer): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    this.hash.update(data);
    const at = this.size;
    this.size += data.length;
    if (data.length >= BUFFER_SIZE) {
      const drained = this.drain();
      const written = this.track(this.writeAllAt(data, at));
      return drained ? Promise.all([drained, written]).then(noop) : written;
    }
    const drained = this.fill + data.length > BUFFER_SIZE ? this.drain() : undefined;
    if (this.fill === 0) this.bufferAt = at;
    data.copy(this.buffer, this.fill);
    this.fill += data.length;
    // Backpressure: a write that filled the buffer waits for it to go out.
    return drained ?? Promise.resolve();
  }

  /** Makes the blob durable and visible; returns its digest and size. */
  async commit(): Promise<{ digest: string; size: number }> {
    this.drain();
    while (this.inflight.size > 0) await Promise.allSettled([...this.inflight]);
    if (this.failure) throw this.failure;
    await this.handle.sync();
    await this.handle.close();
    this.done = true;
    const hex = this.hash.digest('hex');
    await rename(this.tempPath, join(this.blobDir, hex));
    await fsyncDir(this.blobDir);
    return { digest: `sha256:${hex}`, size: this.size };
  }

  async abort(): Promise<void> {
    if (this.done) return;
    this.done = true;
    // No write may land on a descriptor number that closing frees for reuse.
    await Promise.allSettled([...this.inflight]);
    await this.handle.close().catch(() => undefined);
    await rm(this.tempPath, { force: true });
  }

  /** Starts writing the buffered bytes (with a fresh buffer for what follows); undefined when empty. */
  private drain(): Promise<void> | undefined {
    if (this.fill === 0) return undefined;
    const full = this.buffer.subarray(0, this.fill);
    this.buffer = Buffer.allocUnsafe(BUFFER_SIZE);
    this.fill = 0;
    return this.track(this.writeAllAt(full, this.bufferAt));
  }

  /** Counts bytes handed to writes; past SYNC_EVERY starts an early datasync (commit still syncs everything). */
  private written(bytes: number): void {
    this.unsynced += bytes;
    if (this.unsynced < SYNC_EVERY || this.syncing) return;
    this.unsynced = 0;
    this.syncing = true;
    void this.track(this.handle.datasync().finally(() => (this.syncing = false)));
  }

  private track(write: Promise<void>): Promise<void> {
    this.inflight.add(write);
    write.then(
      () => this.inflight.delete(write),
      (e: unknown) => {
        this.inflight.delete(write);
        this.failure ??= e;
      },
    );
    return write;
  }

  private writeAllAt(data: Buffer, position: number): Promise<void> {
    this.written(data.length);
    return new Promise((resolve, reject) => {
      const step = (done: number): void => {
        if (done === data.length) return resolve();
        writeCallback(this.handle.fd, data, done, data.length - done, position + done, (err, n) => (err ? reject(err) : step(done + n)));
      };
      step(0);
    });
  }
}

function noop(): void {}
