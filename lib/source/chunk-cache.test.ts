import { randomBytes } from 'node:crypto';
import { readdir, readFile, stat, truncate, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chunkVerifyFailures } from '../metrics/metrics.js';
import { ChunkCache, sha256Hex } from './chunk-cache.js';
import { withTempDir } from './test-support.js';

function chunk(size = 4096): { hex: string; data: Buffer } {
  const data = randomBytes(size);
  return { hex: sha256Hex(data), data };
}

function pathOf(dir: string, hex: string): string {
  return join(dir, 'chunks', hex.slice(0, 2), hex);
}

async function readAll(cache: ChunkCache, hex: string, size: number): Promise<Buffer | undefined> {
  const out = Buffer.alloc(size);
  return (await cache.read(hex, 0, out, 0, size)) ? out : undefined;
}

function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

async function cacheFailures(): Promise<number> {
  return (await chunkVerifyFailures.get()).values.find((v) => v.labels.source === 'cache')?.value ?? 0;
}

for (const maxOpenFiles of [0, 256]) {
  test(`put, then partial and whole reads give the bytes (maxOpenFiles ${maxOpenFiles})`, () =>
    withTempDir(async (dir) => {
      const cache = await ChunkCache.open(dir, { maxBytes: 1 << 20, maxOpenFiles });
      const c = chunk(8192);
      assert.is(cache.has(c.hex), false);
      assert.is(await cache.read(c.hex, 0, Buffer.alloc(10), 0, 10), false, 'absent is a miss');
      await cache.put(c.hex, c.data);
      assert.ok(cache.has(c.hex));
      assert.equal(await readFile(pathOf(dir, c.hex)), c.data);
      const part = Buffer.alloc(100, 0xaa);
      assert.ok(await cache.read(c.hex, 5000, part, 10, 50));
      assert.equal(part.subarray(10, 60), c.data.subarray(5000, 5050));
      assert.is(part[9], 0xaa);
      assert.is(part[60], 0xaa);
      for (let k = 0; k < 20; k++) assert.equal(await readAll(cache, c.hex, 8192), c.data);
      assert.equal(cache.size, { files: 1, bytes: 8192 });
      await cache.close();
    }),
  );
}

test('while demand fetches are in flight, a put waits in memory (read from there) and lands once they pause', () =>
  withTempDir(async (dir) => {
    const cache = await ChunkCache.open(dir, { maxBytes: 1 << 20, writeBehind: { quietMs: 30, maxDelayMs: 10_000 } });
    const c = chunk();
    cache.demand.begin();
    const stored = cache.put(c.hex, c.data);
    let landed = false;
    void stored.then(() => (landed = true));
    await sleep(60);
    assert.is(landed, false, 'waits while a fetch is in flight');
    assert.is(await exists(pathOf(dir, c.hex)), false);
    assert.ok(cache.has(c.hex));
    assert.equal(await readAll(cache, c.hex, 4096), c.data, 'answered from memory');
    const ended = performance.now();
    cache.demand.end();
    await stored;
    assert.ok(performance.now() - ended >= 25, 'and for the quiet period after');
    assert.equal(await readFile(pathOf(dir, c.hex)), c.data);
    assert.equal(cache.size, { files: 1, bytes: 4096 });
    await cache.close();
  }),
);

test('write-behind is bounded: past its bytes, and past its delay, writes go ahead while fetches continue', () =>
  withTempDir(async (dir) => {
    const cache = await ChunkCache.open(dir, { maxBytes: 1 << 20, writeBehind: { maxBytes: 8192, quietMs: 10, maxDelayMs: 150 } });
    const [a, b, c] = [chunk(), chunk(), chunk()];
    cache.demand.begin();
    const started = performance.now();
    const puts = [a, b, c].map((x) => cache.put(x.hex, x.data));
    // Its put resolves after a's and b's (it joins the index after them), its write does not wait.
    while (!(await exists(pathOf(dir, c.hex))) && performance.now() - started < 100) await sleep(5);
    assert.ok(await exists(pathOf(dir, c.hex)), 'the third 4 KiB is over 8 KiB held: written at once');
    assert.is(await exists(pathOf(dir, a.hex)), false);
    await Promise.all(puts);
    assert.ok(performance.now() - started >= 100, 'held ones wait for the delay bound');
    assert.ok(await exists(pathOf(dir, a.hex)));
    cache.demand.end();
    await cache.close();
  }),
);

test('close writes what is held at once', () =>
  withTempDir(async (dir) => {
    const cache = await ChunkCache.open(dir, { maxBytes: 1 << 20, writeBehind: { quietMs: 10, maxDelayMs: 60_000 } });
    const c = chunk();
    cache.demand.begin();
    void cache.put(c.hex, c.data);
    const started = performance.now();
    await cache.close();
    assert.ok(performance.now() - started < 5000, 'not after the 60 s delay bound');
    assert.equal(await readFile(pathOf(dir, c.hex)), c.data);
    const again = await ChunkCache.open(dir, { maxBytes: 1 << 20 });
    assert.equal(await readAll(again, c.hex, 4096), c.data);
    await again.close();
  }),
);

test('held chunks released together join the LRU in the order they were put, not as their writes end', () =>
  withTempDir(async (dir) => {
    // Sizes differ so writes end out of order; 3 of 12 fit.
    const cache = await ChunkCache.open(dir, { maxBytes: 3 * 64 * 1024, writeBehind: { quietMs: 10, maxDelayMs: 60_000 } });
    const chunks = Array.from({ length: 12 }, (_, i) => chunk(i % 2 ? 4096 : 64 * 1024));
    cache.demand.begin();
    const puts = chunks.map((c) => cache.put(c.hex, c.data));
    await cache.close();
    await Promise.all(puts);
    const kept = chunks.filter((c) => cache.has(c.hex)).map((c) => chunks.indexOf(c));
    assert.equal(kept, [7, 8, 9, 10, 11], 'the last put stay, as many as fit in 3 × 64 KiB');
    for (const i of kept) assert.ok(await exists(pathOf(dir, chunks[i]!.hex)));
    for (let i = 0; i < 7; i++) assert.not.ok(await exists(pathOf(dir, chunks[i]!.hex)), `chunk ${i} deleted by close`);
  }),
);

test('reopen rebuilds the index, verifies on first read, and clears abandoned temp files', () =>
  withTempDir(async (dir) => {
    const a = await ChunkCache.open(dir, { maxBytes: 1 << 20 });
    const chunks = [chunk(), chunk(), chunk(8192)];
    for (const c of chunks) await a.put(c.hex, c.data);
    await a.close();
    await writeFile(join(dir, 'tmp', 'leftover'), 'half a chunk');
    const old = Date.now() / 1000 - 120;
    await utimes(join(dir, 'tmp', 'leftover'), old, old);
    await writeFile(join(dir, 'tmp', 'in-progress'), 'another process writing');
    const b = await ChunkCache.open(dir, { maxBytes: 1 << 20 });
    assert.equal(b.size, { files: 3, bytes: 4096 * 4 });
    assert.equal(await readdir(join(dir, 'tmp')), ['in-progress'], 'only the abandoned temp file is removed');
    for (const c of chunks) assert.equal(await readAll(b, c.hex, c.data.length), c.data);
    await b.close();
  }),
);

test('a truncated (torn) chunk file is detected on first read after reopen, deleted, and a miss', () =>
  withTempDir(async (dir) => {
    const a = await ChunkCache.open(dir, { maxBytes: 1 << 20 });
    const c = chunk();
    await a.put(c.hex, c.data);
    await a.close();
    await truncate(pathOf(dir, c.hex), 1000);
    const before = await cacheFailures();
    const b = await ChunkCache.open(dir, { maxBytes: 1 << 20 });
    assert.ok(b.has(c.hex));
    assert.is(await b.read(c.hex, 0, Buffer.alloc(100), 0, 100), false, 'even a read within the surviving bytes misses');
    assert.is(b.has(c.hex), false);
    assert.is(await cacheFailures(), before + 1);
    await b.close();
    assert.is(await exists(pathOf(dir, c.hex)), false, 'torn file deleted');
    await b.put(c.hex, c.data);
    assert.equal(await readAll(b, c.hex, 4096), c.data, 'refetched copy served');
    await b.close();
  }),
);

test('a flipped byte is detected, and concurrent first reads share one verification', () =>
  withTempDir(async (dir) => {
    const a = await ChunkCache.open(dir, { maxBytes: 1 << 20 });
    const c = chunk();
    await a.put(c.hex, c.data);
    await a.close();
    const bad = Buffer.from(c.data);
    bad[1234]! ^= 1;
    await writeFile(pathOf(dir, c.hex), bad);
    const before = await cacheFailures();
    const b = await ChunkCache.open(dir, { maxBytes: 1 << 20 });
    const results = await Promise.all(Array.from({ length: 8 }, () => b.read(c.hex, 0, Buffer.alloc(4096), 0, 4096)));
    assert.equal(results, Array(8).fill(false));
    assert.is(await cacheFailures(), before + 1);
    assert.equal(b.size, { files: 0, bytes: 0 });
    await b.close();
  }),
);

test('a file removed behind the cache (after verification) reads as a miss', () =>
  withTempDir(async (dir) => {
    const cache = await ChunkCache.open(dir, { maxBytes: 1 << 20, maxOpenFiles: 0 });
    const c = chunk();
    await cache.put(c.hex, c.data);
    await (await import('node:fs/promises')).unlink(pathOf(dir, c.hex));
    assert.is(await cache.read(c.hex, 0, Buffer.alloc(10), 0, 10), false);
    assert.is(cache.has(c.hex), false);
    await cache.close();
  }),
);

test('eviction keeps the size under maxBytes, least recently used first, never pinned chunks', () =>
  withTempDir(async (dir) => {
    const cache = await ChunkCache.open(dir, { maxBytes: 4 * 4096 });
    const removed: string[] = [];
    cache.onRemove((hex) => removed.push(hex));
    const cs = Array.from({ length: 8 }, () => chunk());
    for (const c of cs.slice(0, 4)) await cache.put(c.hex, c.data);
    const pin = cache.pin([cs[0]!.hex, cs[4]!.hex]);
    assert.ok(await readAll(cache, cs[1]!.hex, 4096), 'use 1: now 2 is the oldest unpinned');
    await cache.put(cs[4]!.hex, cs[4]!.data);
    assert.equal(removed, [cs[2]!.hex]);
    await cache.put(cs[5]!.hex, cs[5]!.data);
    assert.equal(removed, [cs[2]!.hex, cs[3]!.hex]);
    assert.ok(cache.has(cs[0]!.hex) && cache.has(cs[4]!.hex), 'pinned chunks stay');
    assert.is(cache.size.bytes, 4 * 4096);
    // Everything but the pinned ones evictable: more puts push out 1, 5 …
    await cache.put(cs[6]!.hex, cs[6]!.data);
    await cache.put(cs[7]!.hex, cs[7]!.data);
    assert.ok(cache.has(cs[0]!.hex) && cache.has(cs[4]!.hex));
    assert.is(cache.size.bytes, 4 * 4096);
    await cache.close();
    const files = (await Promise.all((await readdir(join(dir, 'chunks'))).map((d) => readdir(join(dir, 'chunks', d))))).flat();
    assert.is(files.length, 4, 'evicted files are deleted');
    pin.release();
  }),
);

test('inside the refetch window a stored chunk is not evicted; older ones are, oldest first', () =>
  withTempDir(async (dir) => {
    const old = Array.from({ length: 3 }, () => chunk());
    const seed = await ChunkCache.open(dir, { maxBytes: 1 << 20 });
    for (const c of old) await seed.put(c.hex, c.data);
    await seed.close();
    // Stored an hour ago, as far as the window is concerned.
    const anHourAgo = new Date(Date.now() - 3_600_000);
    for (const c of old) await utimes(pathOf(dir, c.hex), anHourAgo, anHourAgo);
    const cache = await ChunkCache.open(dir, { maxBytes: 2 * 4096, refetchWindowMs: 60_000 });
    const fresh = Array.from({ length: 4 }, () => chunk());
    for (const c of fresh) await cache.put(c.hex, c.data);
    assert.ok(old.every((c) => !cache.has(c.hex)), 'chunks older than the window were evicted');
    assert.ok(fresh.every((c) => cache.has(c.hex)), 'chunks inside the window stay, past maxBytes');
    assert.is(cache.size.bytes, 4 * 4096);
    await cache.close();
    const plain = await ChunkCache.open(dir, { maxBytes: 2 * 4096 });
    const more = chunk();
    await plain.put(more.hex, more.data);
    assert.is(plain.size.bytes, 2 * 4096, 'without a window the limit holds');
    await plain.close();
  }),
);

test('when pins hold more than maxBytes the cache grows rather than refuse; release evicts', () =>
  withTempDir(async (dir) => {
    const cache = await ChunkCache.open(dir, { maxBytes: 2 * 4096 });
    const cs = Array.from({ length: 4 }, () => chunk());
    const pin = cache.pin(cs.map((c) => c.hex));
    for (const c of cs) await cache.put(c.hex, c.data);
    assert.is(cache.size.bytes, 4 * 4096);
    pin.release();
    assert.is(cache.size.bytes, 2 * 4096);
    assert.ok(cache.has(cs[3]!.hex) && cache.has(cs[2]!.hex), 'most recent kept');
    await cache.close();
  }),
);

test('chunks whose pin is released rejoin the LRU order by their last use', () =>
  withTempDir(async (dir) => {
    const cache = await ChunkCache.open(dir, { maxBytes: 1 << 20 });
    const [a, b, c, d] = Array.from({ length: 4 }, () => chunk());
    const pin = cache.pin([a!.hex, c!.hex]);
    for (const x of [a, b, c, d]) await cache.put(x!.hex, x!.data);
    await readAll(cache, a!.hex, 4096); // use order now: b, c, d, a
    pin.release();
    const removed: string[] = [];
    cache.onRemove((hex) => removed.push(hex));
    await cache.gc({ maxBytes: 4096 });
    assert.equal(removed, [b!.hex, c!.hex, d!.hex]);
    await cache.close();
  }),
);

test('reopen restores LRU order from mtimes', () =>
  withTempDir(async (dir) => {
    const a = await ChunkCache.open(dir, { maxBytes: 1 << 20 });
    const cs = Array.from({ length: 3 }, () => chunk());
    for (const c of cs) await a.put(c.hex, c.data);
    await a.close();
    // Make chunk 2 the oldest, then 0, then 1.
    const t = Date.now() / 1000;
    await utimes(pathOf(dir, cs[2]!.hex), t - 300, t - 300);
    await utimes(pathOf(dir, cs[0]!.hex), t - 200, t - 200);
    await utimes(pathOf(dir, cs[1]!.hex), t - 100, t - 100);
    const b = await ChunkCache.open(dir, { maxBytes: 2 * 4096 });
    const removed: string[] = [];
    b.onRemove((hex) => removed.push(hex));
    await b.gc();
    assert.equal(removed, [cs[2]!.hex]);
    await b.gc({ maxBytes: 4096 });
    assert.equal(removed, [cs[2]!.hex, cs[0]!.hex]);
    await b.close();
  }),
);

test('gc removes unreferenced and corrupt chunks and reports', () =>
  withTempDir(async (dir) => {
    const a = await ChunkCache.open(dir, { maxBytes: 1 << 20 });
    const cs = Array.from({ length: 5 }, () => chunk());
    for (const c of cs) await a.put(c.hex, c.data);
    await a.close();
    await truncate(pathOf(dir, cs[1]!.hex), 10);
    const b = await ChunkCache.open(dir, { maxBytes: 1 << 20 });
    const referenced = new Set([cs[0]!.hex, cs[1]!.hex, cs[2]!.hex]);
    const pin = b.pin([cs[3]!.hex]);
    const report = await b.gc({ keep: (hex) => referenced.has(hex), verify: true });
    assert.equal(report, { removedFiles: 2, removedBytes: 4096 + 10, corruptFiles: 1, keptFiles: 3, keptBytes: 3 * 4096 });
    assert.ok(b.has(cs[0]!.hex) && b.has(cs[2]!.hex) && b.has(cs[3]!.hex));
    pin.release();
    await b.close();
  }),
);

test.run();
