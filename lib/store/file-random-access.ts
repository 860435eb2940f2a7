import { open, type FileHandle } from 'node:fs/promises';
import type { RandomAccess } from '../format/random-access.js';
import { readAt } from './positional-read.js';

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

  /** Reads into a caller's buffer, so a device can assemble a reply without copies (every served read of a local layer lands here). */
  async readInto(offset: number, target: Buffer, targetOffset: number, length: number): Promise<void> {
    const got = await readAt(this.handle.fd, target, targetOffset, length, offset);
    if (got < length) throw new RangeError(`read [${offset}, ${offset + length}) past end of file (size ${this.size})`);
  }

  close(): Promise<void> {
    return this.handle.close();
  }
}
