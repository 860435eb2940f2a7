import { open, rename, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { UpperError } from './errors.js';
import { fsyncDir } from '../../store/fsync-dir.js';
import { readFully, writeFully } from './file-io.js';
import type { OwnedExtent } from './extent-map.js';
import { Owner } from './extent-map.js';
import { decodeHeader, encodeHeader } from './journal-header.js';
import { sectorCeil } from './sectors.js';
import { decodeRecord, encodeRecord, type JournalRecord } from './journal-record.js';
import { JOURNAL_FILE, JOURNAL_HEADER_SIZE, JOURNAL_RECORD_SIZE, JOURNAL_TEMP_FILE, JournalOp, SECTOR_SIZE } from './upper-spec.js';

export interface ReplayHooks {
  /** Called in journal order for every record that stands (never for Flush markers). */
  apply(record: JournalRecord): void;
  /**
   * Whether a Data record written after the last Flush marker may stand: false when
   * its bytes may not have reached the data file (a crash can persist the record
   * without the data), which would expose stale bytes. Called after `apply` of every earlier record.
   */
  verify(record: JournalRecord): Promise<boolean>;
}

/** Replay reads the journal this many bytes at a time (a multiple of the record size). */
const READ_BATCH = 1 << 20;
/** Compaction writes records this many at a time. */
const WRITE_BATCH = 2048;
/** Records a batch has room for at first (4 KiB); it doubles when a burst needs more. */
const APPEND_BATCH = 128;

/** Consecutive records waiting to go out in one write. */
interface AppendBatch {
  first: number;
  count: number;
  bytes: Buffer;
  written: Promise<void>;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/**
 * The upper's append-only extent journal (format-spec/upper-v1.md). Each
 * append gets its position and sequence synchronously, so records land in call
 * order however their writes complete. A Flush marker is written only after the
 * data file is synced and every earlier record is written, which is what lets
 * replay trust everything before the last marker. Appends go out one write at a
 * time; those issued while a write is in flight share the next one (group
 * commit), so under pipelined load journal writes stay few and large.
 */
export class Journal {
  private readonly inflight = new Set<Promise<void>>();
  private failure: UpperError | null = null;
  private rewriting = false;
  /** Record count right after the newest Flush marker was reserved (or the opened journal's, when nothing followed its last marker). */
  private recordsAtLastMarker: number;
  private lastFlush: Promise<void> = Promise.resolve();
  /** Appends not yet handed to a write, and whether a batch write is in flight. */
  private gathering: AppendBatch | null = null;
  private batchInFlight = false;

  private constructor(
    private fd: FileHandle,
    private readonly dir: string,
    private readonly virtualSize: number,
    private baseSequence: number,
    private records: number,
    unflushedRecords: number,
  ) {
    // A journal opened with nothing after its last marker needs no flush: closing an untouched upper writes nothing.
    this.recordsAtLastMarker = unflushedRecords === 0 ? records : -1;
  }

  /** Records in the file, markers included; what compaction would shrink. */
  get recordCount(): number {
    return this.records;
  }

  /** Writes an empty journal atomically; its presence is what makes a directory an upper. */
  static async create(dir: string, virtualSize: number): Promise<Journal> {
    await writeJournalFile(dir, encodeHeader({ virtualSize, baseSequence: 0 }), []);
    return new Journal(await open(join(dir, JOURNAL_FILE), 'r+'), dir, virtualSize, 0, 0, 0);
  }

  /**
   * Replays the journal. Stops at the first record that is torn, garbled, out of
   * sequence or (after the last Flush marker) whose data does not match, and cuts
   * the file there so new records follow the last good one.
   */
  static async open(dir: string, virtualSize: number, hooks: ReplayHooks): Promise<Journal> {
    const path = join(dir, JOURNAL_FILE);
    const fd = await open(path, 'r+');
    try {
      const head = Buffer.alloc(JOURNAL_HEADER_SIZE);
      await readFully(fd, head, 0, JOURNAL_HEADER_SIZE, 0);
      const header = decodeHeader(head, path);
      if (header.virtualSize !== virtualSize) {
        throw new UpperError('E_UPPER_SIZE_MISMATCH', `${dir} holds an upper for virtual size ${header.virtualSize}, not ${virtualSize}`);
      }
      const fileSize = (await fd.stat()).size;
      // Records after the last marker, with their index, until we know they stand.
      const unflushed: { record: JournalRecord; index: number }[] = [];
      const batch = Buffer.allocUnsafe(READ_BATCH);
      let index = 0;
      let pos = JOURNAL_HEADER_SIZE;
      scan: while (pos + JOURNAL_RECORD_SIZE <= fileSize) {
        const want = Math.min(READ_BATCH, Math.floor((fileSize - pos) / JOURNAL_RECORD_SIZE) * JOURNAL_RECORD_SIZE);
        await readFully(fd, batch, 0, want, pos);
        for (let at = 0; at < want; at += JOURNAL_RECORD_SIZE) {
          const record = decodeRecord(batch, at);
          if (record === null || !plausible(record, (header.baseSequence + index) >>> 0, virtualSize)) break scan;
          if (record.op === JournalOp.Flush) {
            for (const u of unflushed) hooks.apply(u.record);
            unflushed.length = 0;
          } else unflushed.push({ record, index });
          index++;
        }
        pos += want;
      }
      let kept = 0;
      for (const u of unflushed) {
        if (u.record.op === JournalOp.Data && !(await hooks.verify(u.record))) {
          index = u.index;
          break;
        }
        hooks.apply(u.record);
        kept++;
      }
      const end = JOURNAL_HEADER_SIZE + index * JOURNAL_RECORD_SIZE;
      if (fileSize > end) {
        await fd.truncate(end);
        await fd.datasync();
      }
      return new Journal(fd, dir, virtualSize, header.baseSequence, index, kept);
    } catch (e) {
      await fd.close();
      throw e;
    }
  }

  /** Appends a Data or Zero record. Call order is journal order; resolves once the record is written (not synced). */
  append(op: JournalOp.Data | JournalOp.Zero, offset: number, length: number, dataChecksum: number): Promise<void> {
    const index = this.reserve();
    let batch = this.gathering;
    // A Flush marker reserved in between breaks the run: it is written on its own.
    if (batch === null || batch.first + batch.count !== index) {
      let resolve!: () => void;
      let reject!: (err: unknown) => void;
      const written = new Promise<void>((res, rej) => ((resolve = res), (reject = rej)));
      batch = { first: index, count: 0, bytes: Buffer.allocUnsafe(APPEND_BATCH * JOURNAL_RECORD_SIZE), written: this.track(written), resolve, reject };
      this.gathering = batch;
    }
    if ((batch.count + 1) * JOURNAL_RECORD_SIZE > batch.bytes.length) {
      const grown = Buffer.allocUnsafe(batch.bytes.length * 2);
      batch.bytes.copy(grown);
      batch.bytes = grown;
    }
    encodeRecord({ op, offset, length, sequence: (this.baseSequence + index) >>> 0, dataChecksum }, batch.bytes, batch.count * JOURNAL_RECORD_SIZE);
    batch.count++;
    this.sendBatch();
    return batch.written;
  }

  /**
   * Makes every record appended before this call durable: `syncData` (the data
   * file's sync), then the earlier records, then a Flush marker, then the journal
   * sync. Flushes with nothing new in between share one marker.
   */
  flush(syncData: () => Promise<void>): Promise<void> {
    this.check();
    if (this.records === this.recordsAtLastMarker) return this.lastFlush;
    const earlier = [...this.inflight];
    const index = this.reserve();
    this.recordsAtLastMarker = this.records;
    const marker = { op: JournalOp.Flush, offset: 0, length: 0, sequence: (this.baseSequence + index) >>> 0, dataChecksum: 0 };
    const done = (async () => {
      await syncData();
      await Promise.all(earlier);
      await this.writeRecord(marker, index);
      await this.fd.datasync();
    })();
    this.lastFlush = this.track(done);
    return this.lastFlush;
  }

  /**
   * Compaction: replaces the journal with one record per extent and a Flush
   * marker (temp file, sync, rename, directory sync). The caller must keep
   * appends and flushes from starting until this resolves.
   */
  async rewrite(syncData: () => Promise<void>, extents: Iterable<OwnedExtent>): Promise<void> {
    this.check();
    this.rewriting = true;
    try {
      await Promise.all([...this.inflight]);
      await syncData();
      const baseSequence = (this.baseSequence + this.records) >>> 0;
      let count = 0;
      const records = (function* () {
        for (const x of extents) {
          const op = x.owner === Owner.Data ? JournalOp.Data : JournalOp.Zero;
          yield { op, offset: x.offset, length: x.length, sequence: (baseSequence + count++) >>> 0, dataChecksum: 0 };
        }
        yield { op: JournalOp.Flush, offset: 0, length: 0, sequence: (baseSequence + count++) >>> 0, dataChecksum: 0 };
      })();
      await writeJournalFile(this.dir, encodeHeader({ virtualSize: this.virtualSize, baseSequence }), records);
      // From the rename on, the old handle points at an unlinked file.
      const old = this.fd;
      try {
        this.fd = await open(join(this.dir, JOURNAL_FILE), 'r+');
      } catch (e) {
        throw this.poison(e);
      }
      await old.close();
      this.baseSequence = baseSequence;
      this.records = count;
      this.recordsAtLastMarker = count;
      this.lastFlush = Promise.resolve();
    } finally {
      this.rewriting = false;
    }
  }

  /** Waits for outstanding writes, then closes. Does not flush. */
  async close(): Promise<void> {
    await Promise.allSettled([...this.inflight]);
    await this.fd.close();
  }

  private reserve(): number {
    this.check();
    if (this.rewriting) throw new Error('journal append during compaction');
    return this.records++;
  }

  private check(): void {
    if (this.failure) throw this.failure;
  }

  /** Starts writing the gathered batch unless a batch write is already in flight (it calls back when done). */
  private sendBatch(): void {
    const batch = this.gathering;
    if (this.batchInFlight || batch === null) return;
    this.gathering = null;
    this.batchInFlight = true;
    writeFully(this.fd, batch.bytes.subarray(0, batch.count * JOURNAL_RECORD_SIZE), JOURNAL_HEADER_SIZE + batch.first * JOURNAL_RECORD_SIZE)
      .then(batch.resolve, batch.reject)
      .finally(() => {
        this.batchInFlight = false;
        this.sendBatch();
      });
  }

  private async writeRecord(record: JournalRecord, index: number): Promise<void> {
    const b = Buffer.allocUnsafe(JOURNAL_RECORD_SIZE);
    encodeRecord(record, b, 0);
    await writeFully(this.fd, b, JOURNAL_HEADER_SIZE + index * JOURNAL_RECORD_SIZE);
  }

  /** Keeps `p` until it settles; a failure poisons the journal, since a gap would hide every later record from replay. */
  private track(p: Promise<void>): Promise<void> {
    const tracked = p.catch((e: unknown) => {
      throw this.poison(e);
    });
    this.inflight.add(tracked);
    const forget = () => this.inflight.delete(tracked);
    tracked.then(forget, forget);
    return tracked;
  }

  private poison(cause: unknown): UpperError {
    this.failure ??= new UpperError('E_UPPER_JOURNAL_FAILED', `upper journal in ${this.dir} failed; reopen the upper`, { cause });
    return this.failure;
  }
}

/** Semantic checks on a record whose checksum matched; a failure ends replay like a torn record. */
function plausible(r: JournalRecord, sequence: number, virtualSize: number): boolean {
  if (r.sequence !== sequence) return false;
  if (r.op === JournalOp.Flush) return r.offset === 0 && r.length === 0 && r.dataChecksum === 0;
  if (r.op === JournalOp.Zero && r.dataChecksum !== 0) return false;
  return r.length > 0 && r.offset % SECTOR_SIZE === 0 && r.length % SECTOR_SIZE === 0 && r.offset + r.length <= sectorCeil(virtualSize);
}

/** Header plus records into the temp file, synced, renamed over the journal, directory synced. */
async function writeJournalFile(dir: string, header: Buffer, records: Iterable<JournalRecord>): Promise<void> {
  const temp = join(dir, JOURNAL_TEMP_FILE);
  const fd = await open(temp, 'w');
  try {
    await writeFully(fd, header, 0);
    let pos = JOURNAL_HEADER_SIZE;
    const batch = Buffer.allocUnsafe(WRITE_BATCH * JOURNAL_RECORD_SIZE);
    let filled = 0;
    for (const r of records) {
      encodeRecord(r, batch, filled);
      filled += JOURNAL_RECORD_SIZE;
      if (filled === batch.length) {
        await writeFully(fd, batch, pos);
        pos += filled;
        filled = 0;
      }
    }
    if (filled > 0) await writeFully(fd, batch.subarray(0, filled), pos);
    await fd.sync();
  } finally {
    await fd.close();
  }
  await rename(temp, join(dir, JOURNAL_FILE));
  await fsyncDir(dir);
}
