import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { prefetchBytesDone } from '../metrics/metrics.js';
import { ChunkCache } from './chunk-cache.js';
import { FetchActivity } from './fetch-activity.js';
import { LazyLayer } from './lazy-layer.js';
import { Prefetcher } from './prefetcher.js';
import { SourceChain } from './source-chain.js';
import { flakyError, makeLayer, MemorySource, withTempDir, type TestLayer } from './test-support.js';

const quiet = { warn: () => {} };

function lazy(layer: TestLayer, cache: ChunkCache, source: MemorySource, activity?: FetchActivity): LazyLayer {
  const chain = new SourceChain({ sources: [source], backoffMs: 1, log: quiet });
  return new LazyLayer({ blob: layer.digest, chunks: layer.chunks, cache, chain, activity, log: quiet });
}

const FAST = 1e12;

test('completes every layer, skipping chunks already local; progress reaches the total', () =>
  withTempDir(async (dir) => {
    const a = await makeLayer(4096, 40, { tail: 1024 });
    const b = await makeLayer(4096, 10);
    const cache = await ChunkCache.open(dir, { maxBytes: 1 << 30 });
    const sa = new MemorySource('registry', a);
    const sb = new MemorySource('registry', b);
    const la = lazy(a, cache, sa);
    const lb = lazy(b, cache, sb);
    await la.warm(a.chunks.offset(10), 4096 * 5);
    sa.requests.length = 0;
    const progress: number[] = [];
    const p = new Prefetcher({ image: 'test/complete', layers: [la, undefined, lb], rateBytesPerSec: FAST, maxRunBytes: 8 * 4096, onProgress: (d) => progress.push(d), log: quiet });
    assert.is(await p.done, 'complete');
    assert.ok(la.complete && lb.complete);
    assert.is(p.bytesDone, p.bytesTotal);
    assert.is(progress[progress.length - 1], a.chunks.dataLength + b.chunks.dataLength);
    assert.ok(sa.requests.every((r) => r.length <= 8 * 4096));
    assert.is(sa.bytesServed, a.chunks.dataLength - 5 * 4096, 'local chunks not fetched again');
    assert.is((await prefetchBytesDone.get()).values.find((v) => v.labels.image === 'test/complete')?.value, p.bytesTotal);
    await cache.close();
  }),
);

test('respects the rate (bytes / elapsed ≤ 1.2 × rate)', () =>
  withTempDir(async (dir) => {
    const layer = await makeLayer(4096, 96);
    const cache = await ChunkCache.open(dir, { maxBytes: 1 << 30 });
    const l = lazy(layer, cache, new MemorySource('registry', layer));
    const rate = 512 * 1024;
    const t0 = performance.now();
    const p = new Prefetcher({ image: 'test/rate', layers: [l], rateBytesPerSec: rate, maxRunBytes: 32 * 1024, log: quiet });
    assert.is(await p.done, 'complete');
    const elapsed = (performance.now() - t0) / 1000;
    const achieved = layer.chunks.dataLength / elapsed;
    assert.ok(achieved <= rate * 1.2, `achieved ${achieved.toFixed(0)} B/s over ${elapsed.toFixed(2)} s, limit ${rate}`);
    assert.ok(achieved >= rate * 0.6, `achieved ${achieved.toFixed(0)} B/s: pacing is not far too slow`);
    await cache.close();
  }),
);

test('trace chunks are fetched first, adjacent ones as one request, then the rest in order', () =>
  withTempDir(async (dir) => {
    const a = await makeLayer(4096, 20);
    const b = await makeLayer(4096, 20);
    const cache = await ChunkCache.open(dir, { maxBytes: 1 << 30 });
    const sa = new MemorySource('registry', a);
    const sb = new MemorySource('registry', b);
    const la = lazy(a, cache, sa);
    const lb = lazy(b, cache, sb);
    const order: string[] = [];
    const note = (name: string, s: MemorySource, t: TestLayer) => {
      const fetch = s.fetch.bind(s);
      s.fetch = async (blob, offset, length, signal) => {
        order.push(`${name}${t.chunks.indexOf(offset)}+${length / 4096}`);
        return fetch(blob, offset, length, signal);
      };
    };
    note('a', sa, a);
    note('b', sb, b);
    const trace = [[1, 15], [1, 16], [1, 17], [0, 3], [1, 2], [0, 19]] as const;
    const p = new Prefetcher({ image: 'test/trace', layers: [la, lb], rateBytesPerSec: FAST, trace, parallel: 1, maxRunBytes: 8 * 4096, log: quiet });
    assert.is(await p.done, 'complete');
    assert.equal(order, ['b15+3', 'a3+1', 'b2+1', 'a19+1', 'a0+3', 'a4+8', 'a12+7', 'b0+2', 'b3+8', 'b11+4', 'b18+2']);
    await cache.close();
  }),
);

test('trace requests go out in parallel', () =>
  withTempDir(async (dir) => {
    const layer = await makeLayer(4096, 16);
    const cache = await ChunkCache.open(dir, { maxBytes: 1 << 30 });
    const source = new MemorySource('registry', layer, { delayMs: 50 });
    const l = lazy(layer, cache, source);
    const trace = [0, 2, 4, 6].map((c) => [0, c] as const);
    const t0 = performance.now();
    const p = new Prefetcher({ image: 'test/parallel', layers: [l], rateBytesPerSec: FAST, trace, parallel: 4, log: quiet });
    await new Promise((r) => setTimeout(r, 30));
    assert.is(source.requests.length, 4, 'four trace requests in flight together');
    await p.done;
    assert.ok(performance.now() - t0 < 400);
    await cache.close();
  }),
);

test('yields while on-demand fetches are in flight', () =>
  withTempDir(async (dir) => {
    const layer = await makeLayer(4096, 8);
    const cache = await ChunkCache.open(dir, { maxBytes: 1 << 30 });
    const source = new MemorySource('registry', layer);
    const activity = new FetchActivity();
    const l = lazy(layer, cache, source, activity);
    activity.begin(); // a client read waiting on the network
    const p = new Prefetcher({ image: 'test/yield', layers: [l], rateBytesPerSec: FAST, log: quiet });
    await new Promise((r) => setTimeout(r, 50));
    assert.is(source.requests.length, 0, 'prefetch waits');
    activity.end();
    assert.is(await p.done, 'complete');
    assert.ok(source.requests.length > 0);
    await cache.close();
  }),
);

test('stop() ends it early; failures are retried with backoff', () =>
  withTempDir(async (dir) => {
    const layer = await makeLayer(4096, 64);
    const cache = await ChunkCache.open(dir, { maxBytes: 1 << 30 });
    const source = new MemorySource('registry', layer, { fail: (n) => (n <= 2 ? flakyError('registry down', false) : undefined) });
    const l = lazy(layer, cache, source);
    const warnings: string[] = [];
    const p = new Prefetcher({ image: 'test/stop', layers: [l], rateBytesPerSec: 64 * 1024, maxRunBytes: 4096, retryDelayMs: 10, log: { warn: (m) => warnings.push(m) } });
    await new Promise((r) => setTimeout(r, 250));
    await p.stop();
    assert.is(await p.done, 'stopped');
    assert.is(warnings.length, 2);
    assert.match(warnings[0]!, /chunks 0\+1 of sha256:.*registry down; retrying in 10 ms/);
    assert.ok(l.bytesLocal > 0 && !l.complete);
    const fetched = source.requests.length;
    await new Promise((r) => setTimeout(r, 100));
    assert.is(source.requests.length, fetched, 'nothing after stop');
    await cache.close();
  }),
);

test('stop() does not wait for a busy client', () =>
  withTempDir(async (dir) => {
    const layer = await makeLayer(4096, 8);
    const cache = await ChunkCache.open(dir, { maxBytes: 1 << 30 });
    const activity = new FetchActivity();
    activity.begin();
    const p = new Prefetcher({ image: 'test/stop-busy', layers: [lazy(layer, cache, new MemorySource('registry', layer), activity)], rateBytesPerSec: FAST, log: quiet });
    await new Promise((r) => setTimeout(r, 20));
    await p.stop();
    assert.is(await p.done, 'stopped');
    activity.end();
    await cache.close();
  }),
);

test('stop() does not wait for a slow fetch', () =>
  withTempDir(async (dir) => {
    const layer = await makeLayer(4096, 8);
    const cache = await ChunkCache.open(dir, { maxBytes: 1 << 30 });
    const source = new MemorySource('registry', layer, { delayMs: 1500 });
    const l = lazy(layer, cache, source);
    const p = new Prefetcher({ image: 'test/stop-slow', layers: [l], rateBytesPerSec: FAST, log: quiet });
    await new Promise((r) => setTimeout(r, 30));
    assert.is(source.requests.length, 1, 'the whole layer, one run, in flight');
    const t0 = performance.now();
    await p.stop();
    assert.ok(performance.now() - t0 < 200, 'stopped at once');
    assert.is(await p.done, 'stopped');
    await l.fetchChunks(0, 8, true); // joins the fetch still in flight
    assert.is(source.requests.length, 1);
    assert.ok(l.complete);
    await cache.close();
  }),
);

test('rate 0 is off', () =>
  withTempDir(async (dir) => {
    const layer = await makeLayer(4096, 4);
    const cache = await ChunkCache.open(dir, { maxBytes: 1 << 30 });
    const source = new MemorySource('registry', layer);
    const p = new Prefetcher({ image: 'test/off', layers: [lazy(layer, cache, source)], rateBytesPerSec: 0, log: quiet });
    assert.is(await p.done, 'stopped');
    assert.is(source.requests.length, 0);
    await cache.close();
  }),
);

test.run();
