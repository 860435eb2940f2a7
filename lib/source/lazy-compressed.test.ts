import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Compression } from '../format/layer-spec.js';
import { decodedChunkMisses } from '../metrics/metrics.js';
import { ChunkCache } from './chunk-cache.js';
import { DecodedChunks } from './decoded-chunks.js';
import { LazyLayer } from './lazy-layer.js';
import { SourceChain } from './source-chain.js';
import { makeLayer, MemorySource, withTempDir, type TestLayer } from './test-support.js';

const quiet = { warn: () => {} };
const CHUNK = 4096;

function lazy(layer: TestLayer, cache: ChunkCache, source: MemorySource, decoded = new DecodedChunks(1 << 20)): LazyLayer {
  const chain = new SourceChain({ sources: [source], attemptTimeoutMs: 200, ioTimeoutMs: 500, backoffMs: 1, log: quiet });
  return new LazyLayer({ blob: layer.digest, chunks: layer.chunks, cache, chain, log: quiet, decoded });
}

async function read(l: LazyLayer, at: number, length: number): Promise<Buffer> {
  const out = Buffer.alloc(length);
  await l.readInto(512 + at, out, 0, length);
  return out;
}

async function decodes(): Promise<number> {
  return (await decodedChunkMisses.get()).values[0]?.value ?? 0;
}

for (const codec of ['zstd', 'lz4'] as const) {
  test(`${codec}: lazy reads of a compressed layer give its data; a run of missing chunks is one request of their stored bytes`, () =>
    withTempDir(async (dir) => {
      const layer = await makeLayer(CHUNK, 12, { compress: { codec }, tail: 1000 });
      const t = layer.chunks;
      assert.ok(t.compressed);
      assert.ok([0, 1, 2, 3].some((i) => t.compression(i) === Compression.None), 'some chunks stay raw');
      const cache = await ChunkCache.open(dir, { maxBytes: 1 << 30 });
      const registry = new MemorySource('registry', layer);
      const l = lazy(layer, cache, registry);
      // Chunks 2..5, starting and ending inside chunks.
      assert.equal(await read(l, 2 * CHUNK + 10, 3 * CHUNK + 100), layer.data.subarray(2 * CHUNK + 10, 5 * CHUNK + 110));
      assert.equal(registry.requests, [{ offset: t.offset(2), length: t.offset(6) - t.offset(2) }], 'one Range of the stored bytes');
      assert.equal(await read(l, 0, layer.data.length), layer.data);
      const before = registry.requests.length;
      assert.equal(await read(l, 3 * CHUNK, 50), layer.data.subarray(3 * CHUNK, 3 * CHUNK + 50));
      assert.is(registry.requests.length, before, 'warm: nothing fetched');
      assert.is(l.bytesLocal, t.storedLength, 'local bytes count what is stored');
      await cache.close();
    }),
  );
}

test('4 KiB reads of one compressed chunk decode it once; concurrent first reads share the decode', () =>
  withTempDir(async (dir) => {
    const layer = await makeLayer(64 * 1024, 3, { compress: { codec: 'zstd' } });
    assert.is(layer.chunks.compression(0), Compression.Zstd);
    const cache = await ChunkCache.open(dir, { maxBytes: 1 << 30 });
    const l = lazy(layer, cache, new MemorySource('registry', layer));
    const start = await decodes();
    const reads = Array.from({ length: 16 }, (_, k) => read(l, k * 4096, 4096));
    const got = await Promise.all(reads);
    got.forEach((b, k) => assert.equal(b, layer.data.subarray(k * 4096, (k + 1) * 4096)));
    for (let k = 0; k < 16; k++) await read(l, k * 4096, 4096);
    assert.is((await decodes()) - start, 1);
    await cache.close();
  }),
);

test('decoded chunks are bounded: past the limit an evicted one is decoded again from the cache, not fetched', () =>
  withTempDir(async (dir) => {
    const layer = await makeLayer(CHUNK, 6, { compress: { codec: 'zstd' } });
    const compressed = [0, 1, 3, 4];
    compressed.forEach((i) => assert.is(layer.chunks.compression(i), Compression.Zstd));
    const cache = await ChunkCache.open(dir, { maxBytes: 1 << 30 });
    const registry = new MemorySource('registry', layer);
    const decoded = new DecodedChunks(2 * CHUNK);
    const l = lazy(layer, cache, registry, decoded);
    for (const i of compressed) await read(l, i * CHUNK, 10);
    assert.equal(decoded.size, { chunks: 2, bytes: 2 * CHUNK });
    const fetched = registry.requests.length;
    const start = await decodes();
    assert.equal(await read(l, 0, CHUNK), layer.data.subarray(0, CHUNK));
    assert.is((await decodes()) - start, 1, 'decoded again');
    assert.is(registry.requests.length, fetched, 'from the local cache');
    await cache.close();
  }),
);

test('a corrupt compressed chunk from a source never reaches the decoder: EIO-class error, and nothing cached', () =>
  withTempDir(async (dir) => {
    const layer = await makeLayer(CHUNK, 3, { compress: { codec: 'lz4' } });
    const cache = await ChunkCache.open(dir, { maxBytes: 1 << 30 });
    const registry = new MemorySource('registry', layer, { corrupt: [layer.chunks.offset(0) + 3] });
    const l = lazy(layer, cache, registry);
    const err = await read(l, 0, 100).then(
      () => undefined,
      (e: { code?: string }) => e,
    );
    assert.is(err?.code, 'E_CHUNK_UNAVAILABLE');
    assert.not.ok(cache.has(layer.chunks.digest(0).toString('hex')));
    await cache.close();
  }),
);

test('readStoredInto gives the blob bytes of the stored region (what a supernode serves)', () =>
  withTempDir(async (dir) => {
    const layer = await makeLayer(CHUNK, 9, { compress: { codec: 'zstd' } });
    const t = layer.chunks;
    const cache = await ChunkCache.open(dir, { maxBytes: 1 << 30 });
    const l = lazy(layer, cache, new MemorySource('registry', layer));
    const from = t.offset(1) + 7;
    const to = t.offset(7) - 3;
    const out = Buffer.alloc(to - from);
    await l.readStoredInto(from, out, 0, out.length);
    assert.equal(out, layer.blob.subarray(from, to));
    await cache.close();
  }),
);

test.run();
