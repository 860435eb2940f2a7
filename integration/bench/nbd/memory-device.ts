import { readFile } from 'node:fs/promises';
import type { BlockDevice, BlockStatusExtent } from '../../../lib/device/block-device.js';

/**
 * The whole image in one Buffer: a benchmark device whose I/O costs nothing,
 * so a run against it measures the NBD server alone.
 */
export class MemoryDevice implements BlockDevice {
  readonly readOnly = false;
  readonly canMultiConn = true;
  private constructor(private readonly data: Buffer) {}

  static async load(path: string): Promise<MemoryDevice> {
    return new MemoryDevice(await readFile(path));
  }

  get size(): number {
    return this.data.length;
  }
  async read(offset: number, length: number): Promise<Buffer> {
    // A copy, as a real device hands out a buffer the server may keep.
    return Buffer.from(this.data.subarray(offset, offset + length));
  }
  async write(offset: number, data: Buffer): Promise<void> {
    data.copy(this.data, offset);
  }
  async flush(): Promise<void> {}
  async trim(offset: number, length: number): Promise<void> {
    this.data.fill(0, offset, offset + length);
  }
  async writeZeroes(offset: number, length: number): Promise<void> {
    this.data.fill(0, offset, offset + length);
  }
  async cache(): Promise<void> {}
  async blockStatus(_offset: number, length: number): Promise<BlockStatusExtent[]> {
    return [{ length, hole: false, zero: false }];
  }
  async close(): Promise<void> {}
}
