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

  /** Reads into a caller's buffer, so a device can assemble a reply without copies. */
  async readInto(offset: number, target: Buffer, targetOffset: number, length: number): Promise<void> {
    let done = 0;
    while (done < length) {
      const { bytesRead } = await this.handle.read(target, targetOffset + done, length - done, offset + done);
      if (bytesRead === 0) throw new RangeError(`read [${offset}, ${offset + length}) past end of file (size ${this.size})`);
      done += bytesRead;
    }
  }

  close(): Promise<void> {
    return this.handle.close();
  }
}
