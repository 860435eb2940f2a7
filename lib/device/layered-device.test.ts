import { copyFile, mkdtemp, readFile, rm, truncate } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { BlockStatusExtent } from './block-device.js';
import { LayeredDevice } from './layered-device.js';
import type { Lower } from './lower.js';
import { decodeRecord } from './upper/journal-record.js';
import { Upper } from './upper/upper.js';
import { DATA_FILE, JOURNAL_FILE, JOURNAL_HEADER_SIZE, JOURNAL_RECORD_SIZE, JournalOp, SECTOR_SIZE } from './upper/upper-spec.js';
import { seededRandom } from '../../integration/support/seeded-random.js';

function randomBytes(rand: (n: number) => number, length: number): Buffer {
  const b = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) b[i] = rand(256);
  return b;
}

/** A lower image in memory: `bytes`, with `holes` (zero-filled) reported as holes. */
class BufferLower implements Lower {
  readonly cached: [number, number][] = [];
  constructor(
    readonly bytes: Buffer,
    private readonly holes: [number, number][],
  ) {}
  get size(): number {
    return this.bytes.length;
  }
  async read(offset: number, length: number): Promise<Buffer> {
    if (offset < 0 || offset + length > this.size) throw new RangeError(`lower read [${offset}, +${length}) past ${this.size}`);
    return Buffer.from(this.bytes.subarray(offset, offset + length));
  }
  status(offset: number, length: number): BlockStatusExtent[] {
    const out: BlockStatusExtent[] = [];
    const end = offset + length;
    for (let x = offset; x < end; ) {
      const hole = this.holes.find(([s, e]) => s <= x && x < e);
      const next = hole ? Math.min(hole[1], end) : Math.min(end, ...this.holes.map(([s]) => s).filter((s) => s > x));
      out.push({ length: next - x, hole: !!hole, zero: !!hole });
      x = next;
    }
    return out;
  }
  async cache(offset: number, length: number): Promise<void> {
    this.cached.push([offset, length]);
  }
}

function randomLower(rand: (n: number) => number, size: number): BufferLower {
  const bytes = randomBytes(rand, size);
  const holes: [number, number][] = [];
  for (let at = rand(8) * 4096; at < size; at += (1 + rand(6)) * 4096) {
    const end = Math.min(size, at + (1 + rand(3)) * 4096);
    holes.push([at, end]);
    bytes.fill(0, at, end);
    at = end;
  }
  return new BufferLower(bytes, holes);
}

const made: string[] = [];

async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'lazybd-layered-'));
  made.push(d);
  return d;
}

test.after(async () => {
  await Promise.all(made.map((d) => rm(d, { recursive: true, force: true })));
});

/** Copies an open upper's files as a SIGKILL would leave them (page cache included). */
async function crashImage(from: string, to: string): Promise<void> {
  await copyFile(join(from, DATA_FILE), join(to, DATA_FILE));
  await copyFile(join(from, JOURNAL_FILE), join(to, JOURNAL_FILE));
}

/** Index of the record after the last Flush marker, and the number of well-formed records. */
function journalShape(journal: Buffer): { afterLastFlush: number; records: number } {
  let afterLastFlush = 0;
  let records = 0;
  for (let at = JOURNAL_HEADER_SIZE; at + JOURNAL_RECORD_SIZE <= journal.length; at += JOURNAL_RECORD_SIZE) {
    const r = decodeRecord(journal, at);
    if (r === null) break;
    records++;
    if (r.op === JournalOp.Flush) afterLastFlush = records;
  }
  return { afterLastFlush, records };
}

/**
 * The model: current bytes, plus for each sector changed since the last flush
 * every value it has held since then (what a crash may legally leave).
 */
class Model {
  readonly history = new Map<number, Buffer[]>();
  constructor(readonly bytes: Buffer) {}
  change(offset: number, apply: () => void, length: number): void {
    const first = Math.floor(offset / SECTOR_SIZE);
    const last = Math.ceil((offset + length) / SECTOR_SIZE);
    for (let s = first; s < last; s++) if (!this.history.has(s)) this.history.set(s, [this.sector(s)]);
    apply();
    for (let s = first; s < last; s++) this.history.get(s)!.push(this.sector(s));
  }
  flushed(): void {
    this.history.clear();
  }
  sector(s: number): Buffer {
    return Buffer.from(this.bytes.subarray(s * SECTOR_SIZE, (s + 1) * SECTOR_SIZE));
  }
}

const SIZE = 128 * 1024;

/** One upper's life: random operations, each sequence ending in a reopen of one of three kinds. */
async function life(seed: number, sequences: number): Promise<void> {
  const rand = seededRandom(seed);
  const lower = randomLower(rand, SIZE);
  const model = new Model(Buffer.from(lower.bytes));
  const dirs = [await tempDir()];
  const open = async (dir: string) => new LayeredDevice({ lower, upper: await Upper.open(dir, { virtualSize: SIZE, compactionSlack: 16 + rand(64) }) });
  let dev = await open(dirs[0]!);
  const range = () => {
    const offset = rand(SIZE);
    const max = rand(4) === 0 ? 20_000 : 1500;
    return [offset, 1 + rand(Math.min(max, SIZE - offset))] as const;
  };
  const where = (what: string) => `seed ${seed}: ${what}`;
  try {
    for (let sq = 0; sq < sequences; sq++) {
      for (let n = 1 + rand(10); n > 0; n--) {
        const [offset, length] = range();
        switch (rand(12)) {
          case 0:
          case 1:
          case 2:
          case 3: {
            const data = randomBytes(rand, length);
            const fua = rand(16) === 0;
            await dev.write(offset, data, fua);
            model.change(offset, () => data.copy(model.bytes, offset), length);
            if (fua) model.flushed();
            break;
          }
          case 4: {
            await dev.writeZeroes(offset, length, { noHole: rand(2) === 0, fastZero: false, fua: false });
            model.change(offset, () => model.bytes.fill(0, offset, offset + length), length);
            break;
          }
          case 5: {
            await dev.trim(offset, length, false);
            const start = Math.ceil(offset / SECTOR_SIZE) * SECTOR_SIZE;
            const end = Math.floor((offset + length) / SECTOR_SIZE) * SECTOR_SIZE;
            if (start < end) model.change(start, () => model.bytes.fill(0, start, end), end - start);
            break;
          }
          case 6:
            await dev.flush();
            model.flushed();
            break;
          default:
            assert.ok((await dev.read(offset, length)).equals(model.bytes.subarray(offset, offset + length)), where(`read [${offset}, +${length})`));
        }
      }
      const kind = rand(3);
      if (kind === 0) {
        await dev.close();
        dev = await open(dirs[dirs.length - 1]!);
        assert.ok((await dev.read(0, SIZE)).equals(model.bytes), where('after close and reopen'));
        model.flushed();
        continue;
      }
      const copy = await tempDir();
      dirs.push(copy);
      await crashImage(dirs[dirs.length - 2]!, copy);
      await dev.close();
      if (kind === 1) {
        // Lose a random tail of the unflushed records, possibly tearing one.
        const journalPath = join(copy, JOURNAL_FILE);
        const { afterLastFlush, records } = journalShape(await readFile(journalPath));
        const keep = afterLastFlush + rand(records - afterLastFlush + 1);
        await truncate(journalPath, JOURNAL_HEADER_SIZE + keep * JOURNAL_RECORD_SIZE + (keep < records ? rand(JOURNAL_RECORD_SIZE) : 0));
      }
      dev = await open(copy);
      const got = await dev.read(0, SIZE);
      for (let s = 0; s < SIZE / SECTOR_SIZE; s++) {
        const actual = got.subarray(s * SECTOR_SIZE, (s + 1) * SECTOR_SIZE);
        const allowed = model.history.get(s) ?? [model.sector(s)];
        assert.ok(
          allowed.some((v) => v.equals(actual)),
          where(`after crash (kind ${kind}) sector ${s} holds a value it never had since the last flush`),
        );
      }
      got.copy(model.bytes);
      await dev.flush();
      model.flushed();
    }
  } finally {
    await dev.close();
    await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
  }
}

/** A small device over a lower with a hole at [8192, 16384). */
async function smallDevice(): Promise<{ dev: LayeredDevice; lower: BufferLower; upper: Upper }> {
  const bytes = Buffer.alloc(64 * 1024, 0x11);
  bytes.fill(0, 8192, 16384);
  const lower = new BufferLower(bytes, [[8192, 16384]]);
  const upper = await Upper.open(await tempDir(), { virtualSize: bytes.length });
  return { dev: new LayeredDevice({ lower, upper }), lower, upper };
}

async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  return p.then(
    () => undefined,
    (e: { code?: string }) => e.code,
  );
}

test('blockStatus merges upper data and zero extents over the lower status', async () => {
  const { dev } = await smallDevice();
  try {
    await dev.write(0, Buffer.alloc(4096, 1), false);
    await dev.trim(4096, 2048, false);
    await dev.write(10240, Buffer.alloc(1024, 2), false);
    await dev.writeZeroes(20480, 4096, { noHole: false, fastZero: true, fua: false });
    assert.equal(await dev.blockStatus(0, 32768), [
      { length: 4096, hole: false, zero: false },
      { length: 2048, hole: true, zero: true },
      { length: 2048, hole: false, zero: false }, // lower data
      { length: 2048, hole: true, zero: true }, // lower hole
      { length: 1024, hole: false, zero: false }, // upper data
      { length: 5120, hole: true, zero: true }, // lower hole
      { length: 4096, hole: false, zero: false }, // lower data
      { length: 4096, hole: true, zero: true }, // upper zero
      { length: 8192, hole: false, zero: false },
    ]);
    // A lower that answers short makes the whole answer stop there.
    const shortLower: Lower = { size: 65536, read: async (_o, l) => Buffer.alloc(l), status: (_o, l) => [{ length: Math.min(l, 1024), hole: false, zero: false }] };
    const shortDev = new LayeredDevice({ lower: shortLower, upper: await Upper.open(await tempDir(), { virtualSize: 65536 }) });
    await shortDev.write(2048, Buffer.alloc(512), false);
    assert.equal(await shortDev.blockStatus(0, 8192), [{ length: 1024, hole: false, zero: false }]);
    await shortDev.close();
  } finally {
    await dev.close();
  }
});

test('write-zeroes: NO_HOLE writes allocated zeroes and is never fast; without it a zero extent', async () => {
  const { dev } = await smallDevice();
  try {
    assert.is(await codeOf(dev.writeZeroes(0, 4096, { noHole: true, fastZero: true, fua: false })), 'DEVICE_NOT_FAST');
    assert.ok((await dev.read(0, 4096)).equals(Buffer.alloc(4096, 0x11)), 'a refused fast zero changes nothing');
    await dev.writeZeroes(100, 3000, { noHole: true, fastZero: false, fua: true });
    const expected = Buffer.alloc(4096, 0x11);
    expected.fill(0, 100, 3100);
    assert.ok((await dev.read(0, 4096)).equals(expected));
    assert.equal(await dev.blockStatus(0, 4096), [{ length: 4096, hole: false, zero: false }]);
    await dev.writeZeroes(4096 + 100, 3000, { noHole: false, fastZero: true, fua: false });
    expected.fill(0x11);
    expected.fill(0, 100, 3100);
    assert.ok((await dev.read(4096, 4096)).equals(expected), 'partial sectors keep their other bytes');
    assert.equal(await dev.blockStatus(4096, 4096), [
      { length: 512, hole: false, zero: false },
      { length: 2560, hole: true, zero: true },
      { length: 1024, hole: false, zero: false },
    ]);
  } finally {
    await dev.close();
  }
});

test('trim zeroes only whole sectors and masks the lower', async () => {
  const { dev } = await smallDevice();
  try {
    await dev.trim(1000, 3000, false);
    const expected = Buffer.alloc(8192, 0x11);
    expected.fill(0, 1024, 3584);
    assert.ok((await dev.read(0, 8192)).equals(expected));
  } finally {
    await dev.close();
  }
});

test('without an upper, or when asked, the device is read-only; the upper still shows through', async () => {
  const { dev, lower, upper } = await smallDevice();
  await dev.write(0, Buffer.alloc(512, 7), false);
  const bare = new LayeredDevice({ lower });
  assert.ok(bare.readOnly && bare.canMultiConn);
  assert.is(await codeOf(bare.write(0, Buffer.alloc(512), false)), 'E_DEVICE_READ_ONLY');
  assert.ok((await bare.read(0, 512)).equals(Buffer.alloc(512, 0x11)));
  const frozen = new LayeredDevice({ lower, upper, readOnly: true });
  assert.is(await codeOf(frozen.trim(0, 512, false)), 'E_DEVICE_READ_ONLY');
  assert.ok((await frozen.read(0, 1024)).equals(Buffer.concat([Buffer.alloc(512, 7), Buffer.alloc(512, 0x11)])));
  await dev.close();
});

test('cache warms only what the upper does not own', async () => {
  const { dev, lower } = await smallDevice();
  try {
    await dev.write(4096, Buffer.alloc(4096), false);
    await dev.cache(0, 16384);
    assert.equal(lower.cached, [
      [0, 4096],
      [8192, 8192],
    ]);
  } finally {
    await dev.close();
  }
});

test('a size that is not a whole number of sectors: the last partial sector works like the others', async () => {
  const size = 8192 + 100;
  const lower = new BufferLower(Buffer.alloc(size, 0x33), []);
  const dir = await tempDir();
  let dev = new LayeredDevice({ lower, upper: await Upper.open(dir, { virtualSize: size }) });
  await dev.write(size - 50, Buffer.alloc(50, 0x44), false); // fills [8192, 8242) from the lower, which ends at 8292
  const expected = Buffer.alloc(size, 0x33);
  expected.fill(0x44, size - 50);
  assert.ok((await dev.read(0, size)).equals(expected));
  await dev.trim(4096, size - 4096, false); // reaches the end: the partial last sector is whole
  expected.fill(0, 4096);
  assert.ok((await dev.read(0, size)).equals(expected));
  await dev.close();
  dev = new LayeredDevice({ lower, upper: await Upper.open(dir, { virtualSize: size }) });
  assert.ok((await dev.read(0, size)).equals(expected));
  assert.equal(await dev.blockStatus(4096, size - 4096), [{ length: size - 4096, hole: true, zero: true }]);
  await dev.close();
});

test('property: random writes, zeroes, trims, flushes and reopens match a byte model', async () => {
  // Independent uppers side by side keep the disk busy while each waits on fsync.
  const seeds = [1, 2, 3, 4, 5, 6, 7, 8];
  await Promise.all(seeds.map((seed) => life(seed, 250)));
});

test.run();
