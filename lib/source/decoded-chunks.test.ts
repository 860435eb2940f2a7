import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { seededRandom } from '../../integration/support/seeded-random.js';
import { CORRELATED_LOOKUPS, DecodedChunks } from './decoded-chunks.js';

const UNIT = 1024;

/** A chunk's decoded bytes, recognisable by key: `units` KiB of its number. */
function chunkOf(key: number, units: number): Buffer {
  return Buffer.alloc(units * UNIT, key % 251);
}

const hexOf = (key: number) => key.toString(16).padStart(64, '0');

/** Reads chunk `key` through copyInto, as a layer does; resolves the bytes it copied and whether `load` ran. */
async function read(cache: DecodedChunks, key: number, units: number): Promise<{ bytes: Buffer; loaded: boolean }> {
  let loaded = false;
  const load = async () => ((loaded = true), chunkOf(key, units));
  const target = Buffer.alloc(units * UNIT);
  await cache.copyInto(hexOf(key), load, 0, target, 0, target.length);
  return { bytes: target, loaded };
}

/**
 * The policy written plainly (arrays, indexes): chunks in decode order, a bit set by a hit that
 * comes more than CORRELATED_LOOKUPS after the decode, a hand evicting the first chunk without it.
 */
class SieveModel {
  order: { key: number; bytes: number; visited: boolean; decodedAt: number }[] = [];
  hand: number | null = null;
  lookups = 0;
  constructor(readonly maxBytes: number) {}
  get bytes(): number {
    return this.order.reduce((n, e) => n + e.bytes, 0);
  }
  /** True on a hit. */
  access(key: number, bytes: number): boolean {
    const now = ++this.lookups;
    const hit = this.order.find((e) => e.key === key);
    if (hit) {
      if (now - hit.decodedAt > CORRELATED_LOOKUPS) hit.visited = true;
      return true;
    }
    if (bytes > this.maxBytes) return false;
    while (this.bytes + bytes > this.maxBytes) {
      let i = this.hand ?? 0;
      while (this.order[i]!.visited) {
        this.order[i]!.visited = false;
        i = (i + 1) % this.order.length;
      }
      this.order.splice(i, 1);
      this.hand = i < this.order.length ? i : null;
    }
    this.order.push({ key, bytes, visited: false, decodedAt: this.lookups });
    return false;
  }
}

test('property: resident chunks, bytes and decodes follow the model under random reads; bytes are always right', async () => {
  for (let seed = 1; seed <= 40; seed++) {
    const rnd = seededRandom(seed);
    const maxUnits = 8 + rnd(40);
    const cache = new DecodedChunks(maxUnits * UNIT);
    const model = new SieveModel(maxUnits * UNIT);
    const keys = 4 + rnd(60);
    // Sizes per key are fixed (a digest names one chunk); some exceed the cache and are never kept.
    const units = Array.from({ length: keys }, () => 1 + rnd(Math.ceil(maxUnits / 3)) + (rnd(20) === 0 ? maxUnits : 0));
    for (let op = 0; op < 1500; op++) {
      // Hot keys come back often, with bursts of one key (a sequential reader) between.
      const key = rnd(4) === 0 ? rnd(Math.min(keys, 4)) : rnd(keys);
      const burst = rnd(8) === 0 ? 1 + rnd(20) : 1;
      for (let b = 0; b < burst; b++) {
        const hit = model.access(key, units[key]! * UNIT);
        const got = await read(cache, key, units[key]!);
        const where = `seed ${seed} op ${op}`;
        assert.is(got.loaded, !hit, `${where}: decoded iff the model misses`);
        assert.ok(got.bytes.equals(chunkOf(key, units[key]!)), `${where}: the chunk's bytes`);
        assert.equal(cache.size, { chunks: model.order.length, bytes: model.bytes }, where);
        assert.ok(cache.size.bytes <= cache.maxBytes, where);
      }
    }
    for (let key = 0; key < keys; key++) assert.is(cache.has(hexOf(key)), model.order.some((e) => e.key === key), `seed ${seed}: key ${key}`);
  }
});

test('a scan larger than the cache, each chunk read 16 times in a row, leaves the reused chunks in memory', async () => {
  const cache = new DecodedChunks(64 * UNIT);
  const hot = Array.from({ length: 16 }, (_, k) => k);
  // Reuse: every hot chunk read again well after it was decoded.
  for (const k of hot) await read(cache, k, 1);
  for (let pass = 0; pass < 2; pass++) for (const k of hot) for (let i = 0; i < CORRELATED_LOOKUPS / hot.length + 1; i++) await read(cache, k, 1);
  let decodes = 0;
  for (let k = 1000; k < 1000 + 20 * 64; k++) for (let i = 0; i < 16; i++) decodes += Number((await read(cache, k, 1)).loaded);
  assert.is(decodes, 20 * 64, 'each scanned chunk decoded once');
  for (const k of hot) assert.ok(cache.has(hexOf(k)), `hot chunk ${k} kept through the scan`);
  for (const k of hot) assert.not.ok((await read(cache, k, 1)).loaded);
  assert.ok(cache.size.bytes <= 64 * UNIT);
});

test('concurrent first reads of a chunk share one decode; a failed decode is not kept and is tried again', async () => {
  const cache = new DecodedChunks(16 * UNIT);
  let loads = 0;
  const slow = () => new Promise<Buffer>((resolve) => setTimeout(() => resolve(chunkOf(7, 2)), 5)).finally(() => loads++);
  const all = await Promise.all([cache.get(hexOf(7), slow), cache.get(hexOf(7), slow), cache.get(hexOf(7), slow)]);
  assert.is(loads, 1);
  assert.ok(all.every((b) => b === all[0]));
  await cache.get(hexOf(8), () => Promise.reject(new Error('corrupt'))).then(
    () => assert.unreachable(),
    (e: Error) => assert.is(e.message, 'corrupt'),
  );
  assert.not.ok(cache.has(hexOf(8)));
  assert.ok((await read(cache, 8, 1)).loaded);
});

test.run();
