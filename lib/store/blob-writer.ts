import { createHash, randomBytes } from 'node:crypto';
import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { ByteSink } from '../format/random-access.js';
import { fsyncDir } from './fsync-dir.js';

const BUFFER_SIZE = 1 << 20;

/**
 * Writes a blob to a temp file in the store, hashing as it goes; `commit()` makes it
 * durable and visible under its digest in one rename, so readers never see half a blob.
 */
export class BlobWriter implements ByteSink {
  private readonly hash = createHash('sha256');
  private readonly buffer = Buffer.allocUnsafe(BUFFER_SIZE);
  private fill = 0;
  private size = 0;
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

  async write(data: Buffer): Promise<void> {
    this.hash.update(data);
    this.size += data.length;
    if (data.length >= BUFFER_SIZE) {
      await this.drain();
      await this.writeAll(data);
      return;
    }
    if (this.fill + data.length > BUFFER_SIZE) await this.drain();
    data.copy(this.buffer, this.fill);
    this.fill += data.length;
  }

  /** Makes the blob durable and visible; returns its digest and size. */
  async commit(): Promise<{ digest: string; size: number }> {
    await this.drain();
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
    await this.handle.close().catch(() => undefined);
    await rm(this.tempPath, { force: true });
  }

  private async drain(): Promise<void> {
    if (this.fill === 0) return;
    const full = this.buffer.subarray(0, this.fill);
    await this.writeAll(full);
    this.fill = 0;
  }

  private async writeAll(data: Buffer): Promise<void> {
    let at = 0;
    while (at < data.length) {
      const { bytesWritten } = await this.handle.write(data, at, data.length - at);
      at += bytesWritten;
    }
  }
}
