import { write as writeCallback } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { LazybdError } from '../errors.js';
import { readAt } from '../store/positional-read.js';
import type { BlockDevice, BlockStatusExtent, WriteZeroesOptions } from './block-device.js';

/**
 * Write-zeroes with fastZero could only be done by writing zeroes. Carries the
 * NBD errno hint (see lib/nbd/errno.ts) so the server answers ENOTSUP.
 */
export class NotFastError extends LazybdError {
  readonly errno = 'ENOTSUP';
  constructor() {
    super('DEVICE_NOT_FAST', 'zeroing is not faster than writing on this device');
  }
}

/** One shared, never-written source of zeroes for trim and write-zeroes. */
const ZEROES = Buffer.alloc(1024 * 1024);

/**
 * A BlockDevice over a raw image file: every byte is data (no hole tracking),
 * trim and write-zeroes write zeroes. The size is the file's size when opened.
 */
export class RawFileDevice implements BlockDevice {
  readonly canMultiConn = true;

  private constructor(
    private readonly handle: FileHandle,
    readonly size: number,
    readonly readOnly: boolean,
  ) {}

  static async open(path: string, options: { readOnly?: boolean } = {}): Promise<RawFileDevice> {
    const readOnly = options.readOnly ?? false;
    const handle = await open(path, readOnly ? 'r' : 'r+');
    try {
      const { size } = await handle.stat();
      return new RawFileDevice(handle, size, readOnly);
    } catch (err) {
      await handle.close();
      throw err;
    }
  }

  async read(offset: number, length: number): Promise<Buffer> {
    const buffer = Buffer.allocUnsafe(length);
    await this.readInto(offset, length, buffer, 0);
    return buffer;
  }

  /** The NBD server reads into its reply buffer through this; a file that shrank reads as zeroes past its end. */
  async readInto(offset: number, length: number, target: Buffer, at: number): Promise<void> {
    const got = await readAt(this.handle.fd, target, at, length, offset);
    if (got < length) target.fill(0, at + got, at + length);
  }

  async write(offset: number, data: Buffer, fua: boolean): Promise<void> {
    await this.writeAll(data, offset);
    if (fua) await this.handle.datasync();
  }

  async flush(): Promise<void> {
    await this.handle.datasync();
  }

  trim(offset: number, length: number, fua: boolean): Promise<void> {
    return this.zero(offset, length, fua);
  }

  async writeZeroes(offset: number, length: number, options: WriteZeroesOptions): Promise<void> {
    if (options.fastZero) throw new NotFastError();
    await this.zero(offset, length, options.fua);
  }

  async cache(_offset: number, _length: number): Promise<void> {
    // Local file: nothing to warm.
  }

  async blockStatus(_offset: number, length: number): Promise<BlockStatusExtent[]> {
    return [{ length, hole: false, zero: false }];
  }

  async close(): Promise<void> {
    await this.handle.close();
  }

  private async zero(offset: number, length: number, fua: boolean): Promise<void> {
    for (let at = 0; at < length; at += ZEROES.length) {
      await this.writeAll(ZEROES.subarray(0, Math.min(ZEROES.length, length - at)), offset + at);
    }
    if (fua) await this.handle.datasync();
  }

  private writeAll(data: Buffer, offset: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const step = (done: number): void => {
        writeCallback(this.handle.fd, data, done, data.length - done, offset + done, (err, bytesWritten) => {
          if (err) return reject(err);
          done += bytesWritten;
          if (done === data.length) resolve();
          else step(done);
        });
      };
      step(0);
    });
  }
}
