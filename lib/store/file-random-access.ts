import { read as readCallback } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import type { RandomAccess } from '../format/random-access.js';

/** A local blob file read by position; the file is held open until `close()`. */
export class FileRandomAccess implements RandomAccess {
  private constructor(
    readonly handle: FileHandle,
    readonly size: number,
  ) {}

  static async open(path: string): Promise<FileRandomAccess> {
    const handle = await open(path, 'r');
    try {
      return new FileRandomAccess(handle, (await handle.stat()).size);
    } catch (e) {
      await handle.close();
      throw e;
    }
  }

  async read(offset: number, length: number): Promise<Buffer> {
    const buf = Buffer.allocUnsafe(length);
    await this.readInto(offset, buf, 0, length);
    return buf;
  }

  /**
   * Reads into a caller's buffer, so a device can assemble a reply without copies.
   * Every served read of a local layer lands here: the callback API on the fd costs
   * less per call than FileHandle.read (as raw-file-device.ts measured).
   */
  readInto(offset: number, target: Buffer, targetOffset: number, length: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const step = (done: number): void => {
        if (done === length) return resolve();
        readCallback(this.handle.fd, target, targetOffset + done, length - done, offset + done, (err, bytesRead) => {
          if (err) return reject(err);
          if (bytesRead === 0) return reject(new RangeError(`read [${offset}, ${offset + length}) past end of file (size ${this.size})`));
          step(done + bytesRead);
        });
      };
      step(0);
    });
  }

  close(): Promise<void> {
    return this.handle.close();
  }
}
