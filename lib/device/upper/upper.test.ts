import { copyFile, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Owner } from './extent-map.js';
import { decodeRecord } from './journal-record.js';
import { fileIoBackend } from '../../store/native-io.js';
import { Upper } from './upper.js';
import { DATA_FILE, JOURNAL_FILE, JOURNAL_HEADER_SIZE, JOURNAL_RECORD_SIZE, JournalOp } from './upper-spec.js';

const SIZE = 1024 * 1024;
const dirs: string[] = [];

async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'lazybd-upper-'));
  dirs.push(d);
  return d;
}

/** The whole virtual range as the upper alone shows it (unowned reads as zero). */
async function contents(upper: Upper): Promise<Buffer> {
  const out = Buffer.alloc(upper.virtualSize);
  for (const r of upper.runs(0, upper.virtualSize)) if (r.owner === Owner.Data) await upper.readData(r.offset, r.length, out, r.offset);
  return out;
}

function pattern(length: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) b[i] = (i * 31 + seed * 7 + (i >> 9)) & 0xff;
  return b;
}

/** Copies the files of a live upper as a SIGKILL would leave them. */
async function crashImage(from: string): Promise<string> {
  const to = await tempDir();
  await copyFile(join(from, DATA_FILE), join(to, DATA_FILE));
  await copyFile(join(from, JOURNAL_FILE), join(to, JOURNAL_FILE));
  return to;
}

test.after(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

test('create, write, reopen; a different virtual size is refused with a code', async () => {
  const dir = await tempDir();
  const upper = await Upper.open(join(dir, 'nested'), { virtualSize: SIZE });
  await upper.write(4096, pattern(8192, 1));
  await upper.write(100, pattern(50, 2)); // unaligned: rest of sector 0 from the (zero) fill
  await upper.zero(65536, 4096);
  const before = await contents(upper);
  await upper.close();
  try {
    await Upper.open(join(dir, 'nested'), { virtualSize: SIZE * 2 });
    assert.unreachable('opened with the wrong size');
  } catch (e) {
    assert.is((e as { code?: string }).code, 'E_UPPER_SIZE_MISMATCH');
  }
  const again = await Upper.open(join(dir, 'nested'), { virtualSize: SIZE });
  assert.ok((await contents(again)).equals(before));
  assert.equal(
    [...again.extents()].map((x) => [x.offset, x.length, x.owner]),
    [
      [0, 512, Owner.Data],
      [4096, 8192, Owner.Data],
      [65536, 4096, Owner.Zero],
    ],
  );
  await again.close();
});

test('unaligned writes fill the rest of their sectors from the fill source, then from the upper itself', async () => {
  const upper = await Upper.open(await tempDir(), { virtualSize: SIZE });
  const lower = pattern(SIZE, 9);
  const fills: [number, number][] = [];
  const fill = async (offset: number, length: number) => {
    fills.push([offset, length]);
    return lower.subarray(offset, offset + length);
  };
  await upper.write(600, Buffer.alloc(100, 0xaa), fill); // inside sector 1
  await upper.write(1000, Buffer.alloc(1000, 0xbb), fill); // sectors 1..3: sector 1 is the upper's now, 3 comes from below
  assert.equal(fills, [
    [512, 512],
    [1536, 512],
  ]);
  const expected = Buffer.from(lower.subarray(0, 4096));
  expected.fill(0xaa, 600, 700);
  expected.fill(0xbb, 1000, 2000);
  const got = (await contents(upper)).subarray(0, 4096);
  assert.ok(got.subarray(512, 2048).equals(expected.subarray(512, 2048)));
  assert.equal([...upper.extents()].map((x) => [x.offset, x.length]), [[512, 1536]]);
  await upper.close();
});

test('concurrent unaligned writes sharing sectors lose no bytes', async () => {
  const upper = await Upper.open(await tempDir(), { virtualSize: SIZE });
  const expected = Buffer.alloc(64 * 100);
  const writes: Promise<void>[] = [];
  for (let i = 0; i < 64; i++) {
    const piece = Buffer.alloc(100, i + 1);
    piece.copy(expected, i * 100);
    writes.push(upper.write(i * 100, piece));
  }
  await Promise.all(writes);
  assert.ok((await contents(upper)).subarray(0, expected.length).equals(expected));
  await upper.close();
});

/** An upper whose journal ends [Data 0..4096 'A'] [Flush] [Zero 0..4096], with the Zero record not yet flushed. */
async function lastRecordIsZero(): Promise<{ dir: string; a: Buffer }> {
  const dir = await tempDir();
  const upper = await Upper.open(dir, { virtualSize: SIZE });
  const a = pattern(4096, 3);
  await upper.write(0, a);
  await upper.flush();
  await upper.zero(0, 4096);
  const image = await crashImage(dir);
  await upper.close();
  return { dir: image, a };
}

test('a torn last record (journal cut at every byte of it) is discarded; earlier data stays', async () => {
  const { dir, a } = await lastRecordIsZero();
  const journal = await readFile(join(dir, JOURNAL_FILE));
  assert.is(journal.length, JOURNAL_HEADER_SIZE + 3 * JOURNAL_RECORD_SIZE);
  const data = await readFile(join(dir, DATA_FILE));
  for (let cut = 0; cut < JOURNAL_RECORD_SIZE; cut++) {
    const d = await tempDir();
    await writeFile(join(d, DATA_FILE), data);
    await writeFile(join(d, JOURNAL_FILE), journal.subarray(0, journal.length - JOURNAL_RECORD_SIZE + cut));
    const upper = await Upper.open(d, { virtualSize: SIZE });
    assert.ok((await contents(upper)).subarray(0, 4096).equals(a), `cut at ${cut}`);
    // The tail was cut away, so new records follow the last good one and survive.
    await upper.write(8192, pattern(512, 4));
    await upper.close();
    const again = await Upper.open(d, { virtualSize: SIZE });
    const after = await contents(again);
    assert.ok(after.subarray(0, 4096).equals(a) && after.subarray(8192, 8704).equals(pattern(512, 4)), `reopen after cut at ${cut}`);
    await again.close();
  }
});

test('a garbled last record (any byte flipped) is discarded; earlier data stays', async () => {
  const { dir, a } = await lastRecordIsZero();
  const journal = await readFile(join(dir, JOURNAL_FILE));
  const data = await readFile(join(dir, DATA_FILE));
  // Untouched, the Zero record stands.
  const intact = await Upper.open(dir, { virtualSize: SIZE });
  assert.ok((await contents(intact)).subarray(0, 4096).equals(Buffer.alloc(4096)));
  await intact.close();
  for (let at = journal.length - JOURNAL_RECORD_SIZE; at < journal.length; at++) {
    const d = await tempDir();
    const garbled = Buffer.from(journal);
    garbled[at]! ^= 0x40;
    await writeFile(join(d, DATA_FILE), data);
    await writeFile(join(d, JOURNAL_FILE), garbled);
    const upper = await Upper.open(d, { virtualSize: SIZE });
    assert.ok((await contents(upper)).subarray(0, 4096).equals(a), `flip at ${at}`);
    await upper.close();
    assert.is((await stat(join(d, JOURNAL_FILE))).size, journal.length - JOURNAL_RECORD_SIZE, 'garbled record cut; closing adds nothing');
  }
});

test('an unflushed record whose data never reached the file is discarded, with everything after it', async () => {
  const dir = await tempDir();
  const upper = await Upper.open(dir, { virtualSize: SIZE });
  await upper.write(0, pattern(4096, 5));
  await upper.flush();
  await upper.write(16384, pattern(4096, 6)); // fresh range: the record alone cannot be trusted
  await upper.zero(0, 512);
  const image = await crashImage(dir);
  await upper.close();
  // As if the journal reached the disk but the data write did not.
  const data = await readFile(join(image, DATA_FILE));
  data.fill(0, 16384, 16384 + 4096);
  await writeFile(join(image, DATA_FILE), data);
  const reopened = await Upper.open(image, { virtualSize: SIZE });
  assert.equal([...reopened.extents()].map((x) => [x.offset, x.length, x.owner]), [[0, 4096, Owner.Data]]);
  assert.ok((await contents(reopened)).subarray(0, 4096).equals(pattern(4096, 5)));
  await reopened.close();
});

test('opening and closing an upper with nothing unflushed leaves its files untouched', async () => {
  const dir = await tempDir();
  const upper = await Upper.open(dir, { virtualSize: SIZE });
  await upper.write(512, pattern(1024, 1));
  await upper.close();
  const journal = await readFile(join(dir, JOURNAL_FILE));
  const again = await Upper.open(dir, { virtualSize: SIZE });
  await again.flush();
  await again.close();
  assert.ok((await readFile(join(dir, JOURNAL_FILE))).equals(journal));
});

test('a crash keeps every written record when unflushed writes do not overlap', async () => {
  const dir = await tempDir();
  const upper = await Upper.open(dir, { virtualSize: SIZE });
  await upper.write(0, pattern(4096, 1));
  await upper.flush();
  await upper.write(8192, pattern(3000, 2));
  await upper.zero(20000, 10000);
  await upper.write(0, pattern(512, 3)); // over flushed data: needs no check
  const expected = await contents(upper);
  const image = await crashImage(dir);
  await upper.close();
  const reopened = await Upper.open(image, { virtualSize: SIZE });
  assert.ok((await contents(reopened)).equals(expected));
  await reopened.close();
});

test('compaction: the journal shrinks to one record per extent and replays to the same contents', async () => {
  const dir = await tempDir();
  const upper = await Upper.open(dir, { virtualSize: SIZE, compactionSlack: 1 << 30 });
  for (let i = 0; i < 400; i++) {
    const offset = ((i * 7919) % 200) * 4096;
    if (i % 5 === 4) await upper.zero(offset, 8192);
    else await upper.write(offset + (i % 3) * 100, pattern(3000, i));
  }
  await upper.flush();
  const expected = await contents(upper);
  const extents = [...upper.extents()];
  const journalPath = join(dir, JOURNAL_FILE);
  const before = (await stat(journalPath)).size;
  await upper.compact();
  const after = await readFile(journalPath);
  assert.is(after.length, JOURNAL_HEADER_SIZE + (extents.length + 1) * JOURNAL_RECORD_SIZE);
  assert.ok(after.length < before, `journal ${before} -> ${after.length} bytes`);
  assert.is(decodeRecord(after, after.length - JOURNAL_RECORD_SIZE)?.op, JournalOp.Flush);
  // Writes after compaction append to the new journal.
  await upper.write(900_000, pattern(700, 99));
  pattern(700, 99).copy(expected, 900_000);
  await upper.close();
  const again = await Upper.open(dir, { virtualSize: SIZE });
  assert.ok((await contents(again)).equals(expected));
  await again.close();
});

test('flush compacts on its own once the journal outgrows the extent map', async () => {
  const dir = await tempDir();
  const upper = await Upper.open(dir, { virtualSize: SIZE, compactionSlack: 64 });
  // Rewriting one block over and over: many records, one extent.
  for (let i = 0; i < 200; i++) await upper.write(0, pattern(4096, i));
  await upper.flush();
  assert.is((await stat(join(dir, JOURNAL_FILE))).size, JOURNAL_HEADER_SIZE + 2 * JOURNAL_RECORD_SIZE);
  await upper.close();
  const again = await Upper.open(dir, { virtualSize: SIZE });
  assert.ok((await contents(again)).subarray(0, 4096).equals(pattern(4096, 199)));
  await again.close();
});

test('writes racing a compaction are neither lost nor misplaced', async () => {
  const dir = await tempDir();
  const upper = await Upper.open(dir, { virtualSize: SIZE, compactionSlack: 1 << 30 });
  const expected = Buffer.alloc(SIZE);
  const ops: Promise<void>[] = [];
  for (let i = 0; i < 300; i++) {
    const offset = (i % 150) * 4096 + 512;
    const data = pattern(1024, i);
    data.copy(expected, offset);
    ops.push(upper.write(offset, data));
    if (i % 50 === 25) ops.push(upper.compact());
    if (i % 40 === 0) ops.push(upper.flush());
  }
  await Promise.all(ops);
  await upper.close();
  const again = await Upper.open(dir, { virtualSize: SIZE });
  assert.ok((await contents(again)).equals(expected));
  await again.close();
});

test('trimmed and zeroed ranges give their blocks back at the next flush, not before; later writes keep theirs', async () => {
  const dir = await tempDir();
  const upper = await Upper.open(dir, { virtualSize: SIZE });
  const blocks = async () => (await stat(join(dir, DATA_FILE))).blocks;
  await upper.write(0, pattern(512 * 1024, 5));
  await upper.flush();
  const full = await blocks();
  await upper.trim(0, 256 * 1024);
  await upper.zero(256 * 1024 + 1000, 64 * 1024); // unaligned: only whole blocks inside can go
  await upper.write(64 * 1024, pattern(4096, 6)); // rewritten after the trim: stays
  assert.is(await blocks(), full, 'nothing freed before the Zero records are durable');
  const unflushed = await crashImage(dir);
  await upper.flush();
  const freed = (full - (await blocks())) * 512;
  const expected = fileIoBackend.canPunchHoles ? 256 * 1024 - 4096 + 60 * 1024 : 0;
  assert.is(freed, expected, `${fileIoBackend.kind}: freed ${freed} bytes`);
  const seen = await contents(upper);
  const model = Buffer.alloc(SIZE);
  pattern(512 * 1024, 5).copy(model);
  model.fill(0, 0, 256 * 1024);
  model.fill(0, 256 * 1024 + 1000, 256 * 1024 + 1000 + 64 * 1024);
  pattern(4096, 6).copy(model, 64 * 1024);
  assert.ok(seen.equals(model), 'contents as written');
  await upper.close();
  const reopened = await Upper.open(dir, { virtualSize: SIZE });
  assert.ok((await contents(reopened)).equals(model), 'the same after reopening');
  await reopened.close();
  // A crash before that flush: the data file was untouched, so a lost Zero record leaves the flushed data.
  const crashed = await Upper.open(unflushed, { virtualSize: SIZE });
  const after = await contents(crashed);
  for (let s = 0; s < 512 * 1024; s += 512) {
    const sector = after.subarray(s, s + 512);
    const options = [pattern(512 * 1024, 5).subarray(s, s + 512), model.subarray(s, s + 512)];
    assert.ok(options.some((o) => o.equals(sector)), `sector ${s}: flushed value or a later one`);
  }
  await crashed.close();
});

test('one opener at a time: a second open fails while the first holds the upper', async () => {
  const dir = await tempDir();
  const upper = await Upper.open(dir, { virtualSize: SIZE });
  try {
    await Upper.open(dir, { virtualSize: SIZE });
    assert.unreachable('opened twice');
  } catch (e) {
    assert.is((e as { code?: string }).code, 'E_UPPER_LOCKED');
  }
  await upper.close();
  await (await Upper.open(dir, { virtualSize: SIZE })).close();
});

test('use after close and out-of-range writes fail with codes', async () => {
  const upper = await Upper.open(await tempDir(), { virtualSize: SIZE });
  const codeOf = (p: Promise<unknown>) => p.then(() => 'none', (e: { code?: string }) => e.code);
  assert.is(await codeOf(upper.write(SIZE - 10, Buffer.alloc(20))), 'E_UPPER_OUT_OF_RANGE');
  await upper.close();
  assert.is(await codeOf(upper.write(0, Buffer.alloc(512))), 'E_UPPER_CLOSED');
});

test.run();
