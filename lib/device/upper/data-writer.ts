import type { FileHandle } from 'node:fs/promises';
import { writeBatchOffThread, type BatchWriteOutcome } from '../../store/native-io.js';
import { dataChecksum } from './data-checksum.js';
import { writeFully } from './file-io.js';

/** Writes whole sectors into the upper's data file, resolving with their Data record checksum (data-checksum.ts). */
export interface DataWriter {
  write(sectors: Buffer, position: number): Promise<number>;
}

/** Writes a batch may carry: enough for any NBD queue depth, small enough that none waits long behind it. */
const MAX_BATCH = 256;

interface Pending {
  sectors: Buffer;
  position: number;
  resolve: (checksum: number) => void;
  reject: (err: unknown) => void;
}

/**
 * Native backend: writes issued while a batch is in the thread pool wait and go out together in
 * the next one, checksummed there too. One hand-off to the pool costs several times a buffered
 * 4 KiB pwrite on this kind of machine (a contended queue lock, two wake-ups), so at depth the
 * hand-offs, not the writes, were the limit (integration/bench/README.md). A lone write goes at once.
 * A batch writes in call order, so of two overlapping writes the later one's bytes stay.
 */
class BatchingDataWriter implements DataWriter {
  private pending: Pending[] = [];
  private inFlight = false;

  constructor(
    private readonly fd: number,
    private readonly writeBatch: NonNullable<typeof writeBatchOffThread>,
  ) {}

  write(sectors: Buffer, position: number): Promise<number> {
    return new Promise((resolve, reject) => {
      this.pending.push({ sectors, position, resolve, reject });
      if (!this.inFlight) void this.send();
    });
  }

  private async send(): Promise<void> {
    const batch = this.pending.splice(0, MAX_BATCH);
    this.inFlight = true;
    let outcomes: BatchWriteOutcome[] | undefined;
    let failure: unknown;
    try {
      outcomes = await this.writeBatch(
        this.fd,
        batch.map((p) => p.sectors),
        batch.map((p) => p.position),
        true,
      );
    } catch (e) {
      failure = e;
    }
    // The writes that gathered meanwhile go before the callers hear back, whose next writes then gather.
    this.inFlight = false;
    if (this.pending.length > 0) void this.send();
    batch.forEach((p, i) => {
      const o = outcomes?.[i];
      if (o === undefined) p.reject(failure);
      else if (o.ok) p.resolve(o.checksum);
      else p.reject(o.error);
    });
  }
}

/** Pure backend: the checksum on the main thread, then one write. */
class DirectDataWriter implements DataWriter {
  constructor(private readonly file: FileHandle) {}

  async write(sectors: Buffer, position: number): Promise<number> {
    const checksum = dataChecksum(sectors);
    await writeFully(this.file, sectors, position);
    return checksum;
  }
}

/** The writer for the loaded backend; `writeBatch` is the native batch call (a test may wrap it to watch the batches). */
export function dataWriter(file: FileHandle, writeBatch = writeBatchOffThread): DataWriter {
  return writeBatch ? new BatchingDataWriter(file.fd, writeBatch) : new DirectDataWriter(file);
}
