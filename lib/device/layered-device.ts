import { LazybdError } from '../errors.js';
import type { BlockDevice, BlockStatusExtent, WriteZeroesOptions } from './block-device.js';
import type { Lower } from './lower.js';
import { NotFastError } from './raw-file-device.js';
import { UpperError } from './upper/errors.js';
import { Owner } from './upper/extent-map.js';
import type { FillFrom, Upper, UpperRun } from './upper/upper.js';

/** A write reached a device served read-only. Carries the NBD errno hint (lib/nbd/errno.ts). */
export class ReadOnlyDeviceError extends LazybdError {
  readonly errno = 'EPERM';
  constructor() {
    super('E_DEVICE_READ_ONLY', 'the device is read-only');
  }
}

export interface LayeredDeviceOptions {
  lower: Lower;
  /** Where writes go; without one the device is read-only. */
  upper?: Upper;
  /** Refuse writes even with an upper (its contents still show through reads). */
  readOnly?: boolean;
}

/** Source of zero bytes for write-zeroes with NO_HOLE; the upper never keeps it. */
const ZEROES = Buffer.alloc(1024 * 1024);

/**
 * An image as a block device: reads take the upper's extents first and fall
 * through to the lower image; every change lands in the upper. Trim is a zero
 * extent, so a committed image keeps trimmed ranges as zeroes.
 */
export class LayeredDevice implements BlockDevice {
  readonly size: number;
  readonly readOnly: boolean;
  /** One upper shared by every connection, and its flush covers all of them. */
  readonly canMultiConn = true;
  private readonly lower: Lower;
  private readonly upper: Upper | undefined;
  private readonly fill: FillFrom;
  private readonly lowerInto: (offset: number, length: number, target: Buffer, at: number) => Promise<void>;

  constructor(options: LayeredDeviceOptions) {
    const { lower, upper } = options;
    if (upper && upper.virtualSize !== lower.size) {
      throw new UpperError('E_UPPER_SIZE_MISMATCH', `upper ${upper.dir} is ${upper.virtualSize} bytes, the image ${lower.size}`);
    }
    this.lower = lower;
    this.upper = upper;
    this.size = lower.size;
    this.readOnly = upper === undefined || options.readOnly === true;
    this.fill = (offset, length) => lower.read(offset, length);
    this.lowerInto = lower.readInto
      ? lower.readInto.bind(lower)
      : (offset, length, target, at) => lower.read(offset, length).then((b) => void b.copy(target, at));
  }

  async read(offset: number, length: number): Promise<Buffer> {
    const out = Buffer.allocUnsafe(length);
    await this.readInto(offset, length, out, 0);
    return out;
  }

  readInto(offset: number, length: number, target: Buffer, at: number): Promise<void> {
    const upper = this.upper;
    if (!upper) return this.lowerInto(offset, length, target, at);
    const runs = upper.runs(offset, length);
    // One run is the common case: its read is the answer, no Promise.all.
    if (runs.length === 1) return this.readRun(runs[0]!, target, at) ?? Promise.resolve();
    const reads: Promise<void>[] = [];
    for (const r of runs) {
      const read = this.readRun(r, target, at + r.offset - offset);
      if (read) reads.push(read);
    }
    return Promise.all(reads).then(() => undefined);
  }

  async write(offset: number, data: Buffer, fua: boolean): Promise<void> {
    const upper = this.writable();
    await upper.write(offset, data, this.fill);
    if (fua) await upper.flush();
  }

  async flush(): Promise<void> {
    await this.upper?.flush();
  }

  /** Only whole sectors are trimmed: trim is advisory, and a partial sector is not worth a read-modify-write. */
  async trim(offset: number, length: number, fua: boolean): Promise<void> {
    const upper = this.writable();
    await upper.trim(offset, length);
    if (fua) await upper.flush();
  }

  async writeZeroes(offset: number, length: number, options: WriteZeroesOptions): Promise<void> {
    const upper = this.writable();
    if (options.noHole) {
      // Allocated zeroes are data like any other write: never fast.
      if (options.fastZero) throw new NotFastError();
      const writes: Promise<void>[] = [];
      for (let at = 0; at < length; at += ZEROES.length) {
        writes.push(upper.write(offset + at, ZEROES.subarray(0, Math.min(ZEROES.length, length - at)), this.fill));
      }
      await Promise.all(writes);
    } else {
      await upper.zero(offset, length, this.fill);
    }
    if (options.fua) await upper.flush();
  }

  async cache(offset: number, length: number): Promise<void> {
    const lower = this.lower;
    if (!lower.cache) return;
    if (!this.upper) return lower.cache(offset, length);
    const warms: Promise<void>[] = [];
    for (const r of this.upper.runs(offset, length)) if (r.owner === Owner.None) warms.push(lower.cache(r.offset, r.length));
    await Promise.all(warms);
  }

  async blockStatus(offset: number, length: number): Promise<BlockStatusExtent[]> {
    if (!this.upper) return this.lower.status(offset, length);
    const out: BlockStatusExtent[] = [];
    for (const r of this.upper.runs(offset, length)) {
      if (r.owner !== Owner.None) {
        const zero = r.owner === Owner.Zero;
        pushMerged(out, { length: r.length, hole: zero, zero });
        continue;
      }
      let covered = 0;
      for (const x of await this.lower.status(r.offset, r.length)) {
        pushMerged(out, { ...x });
        covered += x.length;
      }
      // The lower answered short: extents must stay contiguous, so stop here too.
      if (covered < r.length) break;
    }
    return out;
  }

  async close(): Promise<void> {
    await this.upper?.close();
  }

  /** Fills target at `at` with run `r`; undefined when that took no I/O (a zero run). */
  private readRun(r: UpperRun, target: Buffer, at: number): Promise<void> | undefined {
    switch (r.owner) {
      case Owner.None:
        return this.lowerInto(r.offset, r.length, target, at);
      case Owner.Data:
        return this.upper!.readData(r.offset, r.length, target, at);
      default:
        target.fill(0, at, at + r.length);
        return undefined;
    }
  }

  private writable(): Upper {
    if (this.readOnly || !this.upper) throw new ReadOnlyDeviceError();
    return this.upper;
  }
}

function pushMerged(out: BlockStatusExtent[], x: BlockStatusExtent): void {
  const last = out[out.length - 1];
  if (last && last.hole === x.hole && last.zero === x.zero) last.length += x.length;
  else out.push(x);
}
