import { access, open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { fileIoBackend, punchHole } from '../../store/native-io.js';
import { tryLock } from '../../store/store-lock.js';
import { dataChecksum } from './data-checksum.js';
import { dataWriter, type DataWriter } from './data-writer.js';
import { UpperError } from './errors.js';
import { ExtentMap, Owner, type OwnedExtent } from './extent-map.js';
import { makeDirectoryDurably, readFully } from './file-io.js';
import { Journal } from './journal.js';
import type { JournalRecord } from './journal-record.js';
import { RangeLock } from './range-lock.js';
import { sectorCeil, sectorFloor } from './sectors.js';
import { DATA_FILE, JOURNAL_FILE, JournalOp, LOCK_FILE, MAX_BYTE_VALUE, SECTOR_SIZE } from './upper-spec.js';

/** Bytes of the image below the upper, for the part of a partially written sector the upper does not own yet. */
export type FillFrom = (offset: number, length: number) => Promise<Buffer>;

export interface UpperOptions {
  virtualSize: number;
  /**
   * A flush compacts the journal once it holds this many records more than
   * twice the extent map's boundaries. Default 65536 (2 MiB of journal).
   */
  compactionSlack?: number;
}

/** A stretch of the upper's answer to "who owns [offset, offset+length)": Data lives in the data file at `offset`. */
export interface UpperRun {
  offset: number;
  length: number;
  owner: Owner;
}

const DEFAULT_COMPACTION_SLACK = 65536;
/** Hole punching frees whole file-system blocks; punching part of one would only write zeroes. */
const PUNCH_BLOCK = 4096;

/** Unowned sectors read as zeroes when there is nothing below the upper. */
const zeroFill: FillFrom = async (_offset, length) => Buffer.alloc(length);

/**
 * The writable top of an image (format-spec/upper-v1.md): a sparse data file
 * where virtual offset == file offset, plus an extent journal saying which
 * sectors the upper owns as data or zero. Writes may overlap in time; writes to
 * overlapping sectors are serialized, so read-modify-write of partial sectors is
 * safe and the in-memory map always changes in journal order.
 */
export class Upper {
  private readonly locks = new RangeLock();
  /** Set while compaction runs; never rejects. Appends wait for it. */
  private compacting: Promise<void> | null = null;
  private closed = false;
  private closing: Promise<void> | null = null;
  /** A data write completed since the last flush began: only then does a flush sync the data file. */
  private dataDirty = true;
  /** Ranges zeroed since the last flush began, whose file blocks that flush's end may free. */
  private zeroedSinceFlush: [number, number][] = [];
  private readonly dataWriter: DataWriter;

  private constructor(
    readonly dir: string,
    readonly virtualSize: number,
    private readonly data: FileHandle,
    private readonly journal: Journal,
    private readonly map: ExtentMap,
    private readonly compactionSlack: number,
    private readonly unlock: () => Promise<void>,
  ) {
    this.dataWriter = dataWriter(data);
  }

  /**
   * Opens the upper in `dir`, creating it (and `dir`) when there is none. One
   * process at a time: a live holder of the directory's lock file makes this fail.
   */
  static async open(dir: string, options: UpperOptions): Promise<Upper> {
    const { virtualSize } = options;
    if (!Number.isSafeInteger(virtualSize) || virtualSize <= 0 || virtualSize >= MAX_BYTE_VALUE) {
      throw new RangeError(`virtual size ${virtualSize} must be a positive integer below 2^48`);
    }
    await makeDirectoryDurably(dir);
    const unlock = await tryLock(join(dir, LOCK_FILE));
    if (!unlock) throw new UpperError('E_UPPER_LOCKED', `${dir} is in use by another process`);
    try {
      const { data, journal, map } = await openFiles(dir, virtualSize);
      return new Upper(dir, virtualSize, data, journal, map, options.compactionSlack ?? DEFAULT_COMPACTION_SLACK, unlock);
    } catch (e) {
      await unlock();
      throw e;
    }
  }

  /**
   * Writes `data` at any byte offset. Sectors it covers only partly are completed
   * from what is there now: the upper's own data or zeroes, else `fill` (the lower image).
   */
  async write(offset: number, data: Buffer, fill: FillFrom = zeroFill): Promise<void> {
    this.checkRange(offset, data.length);
    if (data.length === 0) return;
    const start = sectorFloor(offset);
    const end = sectorCeil(offset + data.length);
    const release = await this.locks.acquire(start, end);
    try {
      this.checkOpen();
      const sectors = start === offset && end === offset + data.length ? data : await this.completeSectors(offset, data, start, end, fill);
      const checksum = await this.dataWriter.write(sectors, start);
      this.dataDirty = true;
      while (this.compacting) await this.compacting;
      const logged = this.journal.append(JournalOp.Data, start, end - start, checksum);
      this.map.assign(start, end, Owner.Data);
      await logged;
    } finally {
      release();
    }
  }

  /** Makes [offset, offset+length) read as zeroes. Whole sectors become a zero extent; partial ones are written as data. */
  async zero(offset: number, length: number, fill: FillFrom = zeroFill): Promise<void> {
    this.checkRange(offset, length);
    const [inStart, inEnd] = this.wholeSectors(offset, length);
    if (inStart >= inEnd) {
      if (length > 0) await this.write(offset, Buffer.alloc(length), fill);
      return;
    }
    const parts: Promise<void>[] = [this.zeroSectors(inStart, inEnd)];
    if (offset < inStart) parts.push(this.write(offset, Buffer.alloc(inStart - offset), fill));
    if (inEnd < offset + length) parts.push(this.write(inEnd, Buffer.alloc(offset + length - inEnd), fill));
    await Promise.all(parts);
  }

  /** Discard: zeroes the whole sectors inside the range and leaves partial ones as they are. */
  async trim(offset: number, length: number): Promise<void> {
    this.checkRange(offset, length);
    const [inStart, inEnd] = this.wholeSectors(offset, length);
    if (inStart < inEnd) await this.zeroSectors(inStart, inEnd);
  }

  /** Durability point: every write and zero that completed before this call survives a crash once it resolves. */
  flush(): Promise<void> {
    return this.flushAndRelease(true);
  }

  /** `flush`; `lockRanges` false when the caller already holds every range (close). */
  private async flushAndRelease(lockRanges: boolean): Promise<void> {
    this.checkOpen();
    while (this.compacting) await this.compacting;
    const dirty = this.dataDirty;
    this.dataDirty = false;
    const zeroed = this.zeroedSinceFlush;
    this.zeroedSinceFlush = [];
    await this.journal.flush(() => (dirty ? this.data.datasync() : Promise.resolve()));
    if (zeroed.length > 0) await this.releaseZeroed(zeroed, lockRanges);
    if (this.journal.recordCount > this.compactionSlack + 2 * this.map.boundaryCount) await this.compact();
  }

  /** Rewrites the journal as one record per extent. Writes wait meanwhile; reads do not. */
  compact(): Promise<void> {
    this.checkOpen();
    if (this.compacting) return this.compacting;
    const run = this.journal.rewrite(() => this.data.datasync(), this.map.extents());
    this.compacting = run.then(
      () => {
        this.compacting = null;
      },
      () => {
        this.compacting = null;
      },
    );
    return run;
  }

  /** Consecutive runs covering exactly [offset, offset+length). */
  runs(offset: number, length: number): UpperRun[] {
    const out: UpperRun[] = [];
    this.map.forEachRun(offset, offset + length, (s, e, owner) => out.push({ offset: s, length: e - s, owner }));
    return out;
  }

  /** Every owned extent in order (for commit). Do not write while iterating. */
  extents(): IterableIterator<OwnedExtent> {
    return this.map.extents();
  }

  /** Reads upper-owned Data bytes [offset, offset+length) into `into` at `at`. */
  readData(offset: number, length: number, into: Buffer, at = 0): Promise<void> {
    this.checkOpen();
    return readFully(this.data, into, at, length, offset);
  }

  /** Waits for writes in flight, flushes, and releases the files. Later calls share the first one's outcome. */
  close(): Promise<void> {
    return (this.closing ??= this.shutdown());
  }

  private async shutdown(): Promise<void> {
    const release = await this.locks.acquire(0, sectorCeil(this.virtualSize));
    try {
      await this.flushAndRelease(false);
    } finally {
      this.closed = true;
      release();
      await Promise.allSettled([this.journal.close(), this.data.close()]);
      await this.unlock();
    }
  }

  private async zeroSectors(start: number, end: number): Promise<void> {
    const release = await this.locks.acquire(start, end);
    try {
      this.checkOpen();
      while (this.compacting) await this.compacting;
      const logged = this.journal.append(JournalOp.Zero, start, end - start, 0);
      this.map.assign(start, end, Owner.Zero);
      this.noteZeroed(start, end);
      await logged;
    } finally {
      release();
    }
  }

  /**
   * Gives back the disk space of ranges zeroed before this flush began, now that their Zero records
   * are durable: their sectors read as zero from the journal, so their bytes in the data file mean
   * nothing (format-spec/upper-v1.md) and the file's whole blocks there are punched out. Not sooner:
   * were a Zero record lost in a crash, the sectors must still hold their flushed data. Each range
   * is punched under its range lock, and only where it is still Zero (a later write keeps its data).
   * Best effort: the pure backend, or a file system without hole punching, keeps the blocks.
   */
  private async releaseZeroed(ranges: [number, number][], lockRanges: boolean): Promise<void> {
    for (const [start, end] of coalesce(ranges)) {
      const release = lockRanges ? await this.locks.acquire(start, end) : noop;
      try {
        const zeroRuns: [number, number][] = [];
        this.map.forEachRun(start, end, (s, e, owner) => void (owner === Owner.Zero && zeroRuns.push([s, e])));
        for (const [s, e] of zeroRuns) {
          const from = Math.ceil(s / PUNCH_BLOCK) * PUNCH_BLOCK;
          const to = Math.floor(e / PUNCH_BLOCK) * PUNCH_BLOCK;
          if (from < to) await punchHole(this.data.fd, from, to - from).catch(() => false);
        }
      } finally {
        release();
      }
    }
  }

  /** Remembers a zeroed range for the next flush; a trim right after the previous one (an fstrim pass) extends it. */
  private noteZeroed(start: number, end: number): void {
    if (!fileIoBackend.canPunchHoles) return;
    const last = this.zeroedSinceFlush[this.zeroedSinceFlush.length - 1];
    if (last && last[1] === start) last[1] = end;
    else this.zeroedSinceFlush.push([start, end]);
  }

  /** `data` widened to whole sectors [start, end); the edge sectors' other bytes come from their current owner. */
  private async completeSectors(offset: number, data: Buffer, start: number, end: number, fill: FillFrom): Promise<Buffer> {
    const sectors = Buffer.allocUnsafe(end - start);
    const edges = offset > start ? [start] : [];
    if (offset + data.length < end && end - SECTOR_SIZE !== edges[0]) edges.push(end - SECTOR_SIZE);
    await Promise.all(edges.map((e) => this.readCurrent(e, sectors, e - start, fill)));
    data.copy(sectors, offset - start);
    return sectors;
  }

  /** One sector as reads see it now, into `into` at `at`. */
  private async readCurrent(sector: number, into: Buffer, at: number, fill: FillFrom): Promise<void> {
    switch (this.map.ownerAt(sector)) {
      case Owner.Data:
        return readFully(this.data, into, at, SECTOR_SIZE, sector);
      case Owner.Zero:
        into.fill(0, at, at + SECTOR_SIZE);
        return;
      case Owner.None: {
        // The last sector may reach past the device: those bytes are zero.
        const inside = Math.min(SECTOR_SIZE, this.virtualSize - sector);
        (await fill(sector, inside)).copy(into, at, 0, inside);
        into.fill(0, at + inside, at + SECTOR_SIZE);
      }
    }
  }

  /** The sectors lying wholly inside [offset, offset+length); the device's end counts as a sector boundary. */
  private wholeSectors(offset: number, length: number): [number, number] {
    const end = offset + length;
    return [sectorCeil(offset), end === this.virtualSize ? sectorCeil(end) : sectorFloor(end)];
  }

  private checkRange(offset: number, length: number): void {
    this.checkOpen();
    if (!(offset >= 0 && length >= 0 && offset + length <= this.virtualSize)) {
      throw new UpperError('E_UPPER_OUT_OF_RANGE', `[${offset}, ${offset + length}) is outside the upper's ${this.virtualSize} bytes`);
    }
  }

  private checkOpen(): void {
    if (this.closed) throw new UpperError('E_UPPER_CLOSED', `upper ${this.dir} is closed`);
  }
}

/** Creates the upper's files, or opens and replays them. */
async function openFiles(dir: string, virtualSize: number): Promise<{ data: FileHandle; journal: Journal; map: ExtentMap }> {
  const map = new ExtentMap();
  if (!(await exists(join(dir, JOURNAL_FILE)))) {
    // Data file first: the journal's atomic appearance is what marks the upper complete.
    const data = await open(join(dir, DATA_FILE), 'w+');
    try {
      // A partial last sector gets a whole one, like every other sector.
      await data.truncate(sectorCeil(virtualSize));
      await data.datasync();
      return { data, journal: await Journal.create(dir, virtualSize), map };
    } catch (e) {
      await data.close();
      throw e;
    }
  }
  let data: FileHandle;
  try {
    data = await open(join(dir, DATA_FILE), 'r+');
  } catch (e) {
    throw new UpperError('E_UPPER_CORRUPT', `${dir} has a journal but no readable data file`, { cause: e });
  }
  try {
    const journal = await Journal.open(dir, virtualSize, {
      apply: (r) => map.assign(r.offset, r.offset + r.length, r.op === JournalOp.Data ? Owner.Data : Owner.Zero),
      verify: async (r: JournalRecord) => {
        // Sectors already Data hold their older value or a newer one whatever happened: never stale.
        if (ownsOnlyData(map, r.offset, r.offset + r.length)) return true;
        const bytes = Buffer.allocUnsafe(r.length);
        await readFully(data, bytes, 0, r.length, r.offset);
        return dataChecksum(bytes) === r.dataChecksum;
      },
    });
    const dataSize = (await data.stat()).size;
    if (dataSize !== sectorCeil(virtualSize)) {
      await journal.close();
      throw new UpperError('E_UPPER_CORRUPT', `${dir}/${DATA_FILE} is ${dataSize} bytes, expected ${sectorCeil(virtualSize)}`);
    }
    return { data, journal, map };
  } catch (e) {
    await data.close();
    throw e;
  }
}

function noop(): void {}

/** Sorted, with overlapping and touching ranges merged. */
function coalesce(ranges: [number, number][]): [number, number][] {
  const sorted = ranges.slice().sort((a, b) => a[0] - b[0]);
  const out: [number, number][] = [];
  for (const [s, e] of sorted) {
    const last = out[out.length - 1];
    if (last && s <= last[1]) last[1] = Math.max(last[1], e);
    else out.push([s, e]);
  }
  return out;
}

function ownsOnlyData(map: ExtentMap, start: number, end: number): boolean {
  let only = true;
  map.forEachRun(start, end, (_s, _e, owner) => {
    if (owner !== Owner.Data) only = false;
  });
  return only;
}

/** Only "no such file" counts as absent: any other failure must not lead to creating a fresh upper over an old one. */
async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw e;
  }
}
