import { truncate } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ChunkCache } from './chunk-cache.js';
import { LazyLayer } from './lazy-layer.js';
import { SourceChain } from './source-chain.js';
import { makeLayer, MemorySource, withTempDir, type TestLayer } from './test-support.js';

const quiet = { warn: () => {} };

function lazy(layer: TestLayer, cache: ChunkCache, sources: MemorySource[], extra: Partial<ConstructorParameters<typeof LazyLayer>[0]> = {}): LazyLayer {
  const chain = new SourceChain({ sources, attemptTimeoutMs: 200, ioTimeoutMs: 500, backoffMs: 1, log: quiet });
  return new LazyLayer({ blob: layer.digest, chunks: layer.chunks, cache, chain, log: quiet, ...extra });
}

async function read(l: LazyLayer, physical: number, length: number): Promise<Buffer> {
  const out = Buffer.alloc(length);
  await l.readInto(physical, out, 0, length);
  return out;
}

/** A deterministic PRNG, so a failing random read can be replayed. */
function prng(seed: number): () => number {
  return () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed / 0x80000000;
  };
}

test('random reads equal the blob bytes; everything fetched once; bitset tracks it', () =>
  withTempDir(async (dir) => {
    const layer = await makeLayer(4096, 64, { tail: 2560, repeat: [9, 40] });
    const t = layer.chunks;
    const cache = await ChunkCache.open(dir, { maxBytes: 1 << 30 });
    const registry = new MemorySource('registry', layer, { delayMs: 1 });
    const l = lazy(layer, cache, [registry], { maxRunBytes: 16384 });
    assert.is(l.bytesTotal, t.dataLength);
    assert.is(l.bytesLocal, 0);
    const rand = prng(42);
    const reads: Promise<void>[] = [];
    for (let k = 0; k < 400; k++) {
      const start = t.dataOffset + Math.floor(rand() * t.dataLength);
      const length = 1 + Math.floor(rand() * Math.min(3 * 4096 * rand() + 1, t.dataOffset + t.dataLength - start));
      const at = Math.floor(rand() * 10);
      reads.push(
        (async () => {
          const out = Buffer.alloc(length + 20, 0xee);
          await l.readInto(start, out, at, length);
          assert.equal(out.subarray(at, at + length), layer.blob.subarray(start, start + length), `read ${start}+${length}`);
          assert.ok(out.subarray(0, at).every((b) => b === 0xee) && out.subarray(at + length).every((b) => b === 0xee), 'nothing written outside');
        })(),
      );
      if (k % 7 === 0) await Promise.all(reads.splice(0));
    }
    await Promise.all(reads);
    assert.equal(await read(l, t.dataOffset, t.dataLength), layer.blob.subarray(t.dataOffset, t.dataOffset + t.dataLength));
    await cache.close();
    assert.ok(l.complete);
    assert.is(l.bytesLocal, t.dataLength);
    const fetched = new Set<number>();
    for (const r of registry.requests) {
      assert.ok(r.length <= 16384, 'runs stay within maxRunBytes');
      for (let i = t.indexOf(r.offset); i <= t.indexOf(r.offset + r.length - 1); i++) {
        assert.not.ok(fetched.has(i), `chunk ${i} fetched twice`);
        fetched.add(i);
      }
    }
    assert.is(fetched.size, 64 - 2, 'the repeated chunks came with chunk 0');
  }),
);

test('N concurrent reads of one chunk make one fetch', () =>
  withTempDir(async (dir) => {
    const layer = await makeLayer(65536, 4);
    const cache = await ChunkCache.open(dir, { maxBytes: 1 << 30 });
    const registry = new MemorySource('registry', layer, { delayMs: 20 });
    const l = lazy(layer, cache, [registry]);
    const base = layer.chunks.offset(2);
    const outs = await Promise.all(Array.from({ length: 50 }, (_, k) => read(l, base + k * 1000, 512)));
    outs.forEach((o, k) => assert.equal(o, layer.blob.subarray(base + k * 1000, base + k * 1000 + 512)));
    assert.equal(registry.requests, [{ offset: base, length: 65536 }]);
    await cache.close();
  }),
);

test('adjacent misses are fetched as one request per run; cached chunks split runs', () =>
  withTempDir(async (dir) => {
    const layer = await makeLayer(4096, 40);
    const t = layer.chunks;
    const cache = await ChunkCache.open(dir, { maxBytes: 1 << 30 });
    const registry = new MemorySource('registry', layer);
    const l = lazy(layer, cache, [registry], { maxRunBytes: 8 * 4096 });
    await read(l, t.offset(5), 100);
    registry.requests.length = 0;
    // Chunks 0-19: 5 is cached, so 0-4, then 6-13 (8 = max run), then 14-19.
    assert.equal(await read(l, t.offset(0), 20 * 4096), layer.blob.subarray(t.offset(0), t.offset(20)));
    assert.equal(
      registry.requests.map((r) => [t.indexOf(r.offset), r.length / 4096]),
      [
        [0, 5],
        [6, 8],
        [14, 6],
      ],
    );
    await cache.close();
  }),
);

test('restart with an unreachable registry serves everything cached; uncached reads fail with E_CHUNK_UNAVAILABLE', () =>
  withTempDir(async (dir) => {
    const layer = await makeLayer(4096, 16);
    const t = layer.chunks;
    const first = await ChunkCache.open(dir, { maxBytes: 1 << 30 });
    const l1 = lazy(layer, first, [new MemorySource('registry', layer)]);
    await read(l1, t.offset(0), 8 * 4096);
    await l1.warm(t.offset(12), 4096);
    await first.close();

    const cache = await ChunkCache.open(dir, { maxBytes: 1 << 30 });
    const down = new MemorySource('registry', layer, { fail: () => Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }) });
    const l2 = lazy(layer, cache, [down]);
    assert.is(l2.bytesLocal, 9 * 4096, 'bitset rebuilt from the cache');
    assert.ok(l2.isLocal(12) && !l2.isLocal(11));
    const rand = prng(7);
    for (let k = 0; k < 200; k++) {
      const start = t.offset(0) + Math.floor(rand() * 8 * 4096);
      const length = 1 + Math.floor(rand() * (t.offset(8) - start));
      assert.equal(await read(l2, start, length), layer.blob.subarray(start, start + length));
    }
    assert.equal(await read(l2, t.offset(12) + 10, 100), layer.blob.subarray(t.offset(12) + 10, t.offset(12) + 110));
    assert.is(down.requests.length, 0, 'no network for cached chunks');
    try {
      await read(l2, t.offset(7), 4096 + 10);
      assert.unreachable('chunk 8 is not cached');
    } catch (err) {
      assert.is((err as { code?: string }).code, 'E_CHUNK_UNAVAILABLE');
      assert.match((err as Error).message, /chunk 8 of sha256:[0-9a-f]+ .*registry: ECONNREFUSED/);
    }
    await cache.close();
  }),
);

test('a torn cache file is refetched through the layer, transparently', () =>
  withTempDir(async (dir) => {
    const layer = await makeLayer(4096, 4);
    const t = layer.chunks;
    const first = await ChunkCache.open(dir, { maxBytes: 1 << 30 });
    await lazy(layer, first, [new MemorySource('registry', layer)]).warm(t.offset(0), t.dataLength);
    await first.close();
    const hex = t.digest(1).toString('hex');
    await truncate(join(dir, 'chunks', hex.slice(0, 2), hex), 100);
    const cache = await ChunkCache.open(dir, { maxBytes: 1 << 30 });
    const registry = new MemorySource('registry', layer);
    const l = lazy(layer, cache, [registry]);
    assert.ok(l.complete, 'the cache has a file for every chunk');
    assert.equal(await read(l, t.offset(0), t.dataLength), layer.blob.subarray(t.offset(0), t.offset(0) + t.dataLength));
    assert.equal(registry.requests, [{ offset: t.offset(1), length: 4096 }]);
    await cache.close();
    assert.ok(l.complete);
  }),
);

test('corrupt bytes from a source never reach the reader', () =>
  withTempDir(async (dir) => {
    const layer = await makeLayer(4096, 8);
    const t = layer.chunks;
    const cache = await ChunkCache.open(dir, { maxBytes: 1 << 30 });
    const evil = new MemorySource('peer', layer, { corrupt: [t.offset(3) + 5] });
    const l = lazy(layer, cache, [evil, new MemorySource('registry', layer)]);
    assert.equal(await read(l, t.offset(0), t.dataLength), layer.blob.subarray(t.offset(0), t.offset(0) + t.dataLength));
    const onlyEvil = lazy(layer, await ChunkCache.open(join(dir, 'other'), { maxBytes: 1 << 30 }), [evil]);
    try {
      await read(onlyEvil, t.offset(3), 10);
      assert.unreachable();
    } catch (err) {
      assert.is((err as { code?: string }).code, 'E_CHUNK_UNAVAILABLE');
    }
    await cache.close();
  }),
);

test('evicted chunks leave the bitset; pinned layers are not evicted', () =>
  withTempDir(async (dir) => {
    const a = await makeLayer(4096, 8);
    const b = await makeLayer(4096, 8);
    const cache = await ChunkCache.open(dir, { maxBytes: 10 * 4096 });
    const la = lazy(a, cache, [new MemorySource('registry', a)], { pin: true });
    const lb = lazy(b, cache, [new MemorySource('registry', b)]);
    await la.warm(a.chunks.offset(0), a.chunks.dataLength);
    await lb.warm(b.chunks.offset(0), b.chunks.dataLength);
    await cache.close();
    assert.ok(la.complete, 'pinned layer intact');
    assert.is(lb.bytesLocal, 2 * 4096, 'only 2 of the unpinned layer fit');
    la.unpin();
    await lb.warm(b.chunks.offset(0), b.chunks.dataLength);
    await cache.close();
    assert.ok(lb.complete);
    assert.is(la.bytesLocal, 2 * 4096);
    assert.is(cache.size.bytes, 10 * 4096);
    la.close();
    lb.close();
  }),
);

test('warm fetches without a target; reads afterwards need no request; trace hook sees reads, not warms', () =>
  withTempDir(async (dir) => {
    const layer = await makeLayer(4096, 8);
    const t = layer.chunks;
    const cache = await ChunkCache.open(dir, { maxBytes: 1 << 30 });
    const registry = new MemorySource('registry', layer);
    const seen: number[] = [];
    const l = lazy(layer, cache, [registry], { onChunkRead: (i) => seen.push(i) });
    await l.warm(t.offset(2) + 100, 3 * 4096);
    assert.equal(registry.requests, [{ offset: t.offset(2), length: 4 * 4096 }]);
    assert.is(l.bytesLocal, 4 * 4096);
    await read(l, t.offset(3), 2 * 4096);
    await read(l, t.offset(1) + 4000, 200);
    assert.is(registry.requests.length, 2);
    assert.equal(seen, [3, 4, 1, 2]);
    await cache.close();
  }),
);

test('a chunk repeated in a layer is fetched and cached once, and local at every index', () =>
  withTempDir(async (dir) => {
    const layer = await makeLayer(4096, 6, { repeat: [3, 5] });
    const t = layer.chunks;
    const cache = await ChunkCache.open(dir, { maxBytes: 1 << 30 });
    const registry = new MemorySource('registry', layer);
    const l = lazy(layer, cache, [registry]);
    await l.warm(t.offset(0), 10);
    assert.ok(l.isLocal(0) && l.isLocal(3) && l.isLocal(5) && !l.isLocal(1));
    assert.is(l.bytesLocal, 3 * 4096);
    assert.equal(await read(l, t.offset(3), 4096), layer.blob.subarray(t.offset(3), t.offset(4)));
    assert.is(registry.requests.length, 1);
    await cache.close(); // writes what it holds
    assert.equal(cache.size, { files: 1, bytes: 4096 });
  }),
);

test('reads outside the data region are refused', () =>
  withTempDir(async (dir) => {
    const layer = await makeLayer(4096, 2);
    const cache = await ChunkCache.open(dir, { maxBytes: 1 << 30 });
    const l = lazy(layer, cache, [new MemorySource('registry', layer)]);
    for (const [p, n] of [
      [0, 10],
      [layer.chunks.offset(1), 4097],
    ] as const) {
      try {
        await read(l, p, n);
        assert.unreachable();
      } catch (err) {
        assert.instance(err, RangeError);
      }
    }
    await cache.close();
  }),
);

test.run();
