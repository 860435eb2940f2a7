import type { BlockDevice, BlockStatusExtent, WriteZeroesOptions } from '../device/block-device.js';
import { nbdRequestSeconds, nbdRequests } from '../metrics/metrics.js';

/** Counts and times every request a front end makes of a device (only built when metrics are on). */
export class InstrumentedDevice implements BlockDevice {
  constructor(private readonly inner: BlockDevice) {}

  get size() {
    return this.inner.size;
  }
  get readOnly() {
    return this.inner.readOnly;
  }
  get canMultiConn() {
    return this.inner.canMultiConn;
  }

  read(offset: number, length: number): Promise<Buffer> {
    return this.timed('read', () => this.inner.read(offset, length));
  }

  /** Keeps the server's copy-free read path when metrics are on (counted as `read`). */
  readInto(offset: number, length: number, target: Buffer, at: number): Promise<void> {
    return this.timed('read', async () => {
      if (this.inner.readInto) return this.inner.readInto(offset, length, target, at);
      (await this.inner.read(offset, length)).copy(target, at);
    });
  }

  write(offset: number, data: Buffer, fua: boolean): Promise<void> {
    return this.timed('write', () => this.inner.write(offset, data, fua));
  }
  flush(): Promise<void> {
    return this.timed('flush', () => this.inner.flush());
  }
  trim(offset: number, length: number, fua: boolean): Promise<void> {
    return this.timed('trim', () => this.inner.trim(offset, length, fua));
  }
  writeZeroes(offset: number, length: number, options: WriteZeroesOptions): Promise<void> {
    return this.timed('write_zeroes', () => this.inner.writeZeroes(offset, length, options));
  }
  cache(offset: number, length: number): Promise<void> {
    return this.timed('cache', () => this.inner.cache(offset, length));
  }
  blockStatus(offset: number, length: number): Promise<BlockStatusExtent[]> {
    return this.timed('block_status', () => this.inner.blockStatus(offset, length));
  }
  close(): Promise<void> {
    return this.inner.close();
  }

  private async timed<T>(command: string, op: () => Promise<T>): Promise<T> {
    const end = nbdRequestSeconds.startTimer({ command });
    try {
      const r = await op();
      nbdRequests.inc({ command, outcome: 'ok' });
      return r;
    } catch (e) {
      nbdRequests.inc({ command, outcome: 'error' });
      throw e;
    } finally {
      end();
    }
  }
}
