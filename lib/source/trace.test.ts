import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ChunkCache } from './chunk-cache.js';
import { LazyLayer } from './lazy-layer.js';
import { SourceChain } from './source-chain.js';
import { makeLayer, MemorySource, withTempDir } from './test-support.js';
import { decodeTrace, encodeTrace, TraceRecorder } from './trace.js';

const L0 = `sha256:${'a'.repeat(64)}`;
const L1 = `sha256:${'b'.repeat(64)}`;

test('the recorder keeps first reads in order, once each', () => {
  const r = new TraceRecorder([L0, L1], [10, 5]);
  const h0 = r.hook(0);
  const h1 = r.hook(1);
  for (const [hook, chunk] of [[h1, 4], [h0, 7], [h1, 4], [h0, 0], [h0, 7], [h1, 0]] as const) hook(chunk);
  assert.equal(r.trace, { layers: [L0, L1], entries: [[1, 4], [0, 7], [0, 0], [1, 0]] });
  assert.throws(() => r.hook(2), /not in the traced image/);
});

test('encode/decode round trip, documented JSON shape', () => {
  const trace = { layers: [L0, L1], entries: [[1, 4], [0, 7]] as [number, number][] };
  const text = encodeTrace(trace);
  assert.is(text, `{"version":1,"layers":["${L0}","${L1}"],"entries":[[1,4],[0,7]]}`);
  assert.equal(decodeTrace(text, [10, 5]), trace);
});

test('decode rejects malformed traces with E_TRACE_FORMAT', () => {
  const bad = [
    'not json',
    '[]',
    `{"version":2,"layers":[],"entries":[]}`,
    `{"version":1,"layers":["sha256:xyz"],"entries":[]}`,
    `{"version":1,"layers":["${L0}"],"entries":{}}`,
    `{"version":1,"layers":["${L0}"],"entries":[[1,0]]}`,
    `{"version":1,"layers":["${L0}"],"entries":[[0,-1]]}`,
    `{"version":1,"layers":["${L0}"],"entries":[[0,1.5]]}`,
    `{"version":1,"layers":["${L0}"],"entries":[[0,1,2]]}`,
    `{"version":1,"layers":["${L0}"],"entries":[[0,1],[0,1]]}`,
  ];
  for (const text of bad) assert.throws(() => decodeTrace(text), (e: { code?: string }) => e.code === 'E_TRACE_FORMAT', text);
  assert.throws(() => decodeTrace(`{"version":1,"layers":["${L0}"],"entries":[[0,10]]}`, [10]), /layer 0 has no chunk 10/);
  assert.throws(() => decodeTrace(`{"version":1,"layers":["${L0}"],"entries":[]}`, [10, 3]), /for 1 layers, the image has 2/);
});

test('hooked into a LazyLayer, records what reads touch', () =>
  withTempDir(async (dir) => {
    const layer = await makeLayer(4096, 8);
    const t = layer.chunks;
    const cache = await ChunkCache.open(dir, { maxBytes: 1 << 30 });
    const recorder = new TraceRecorder([layer.digest], [t.count]);
    const chain = new SourceChain({ sources: [new MemorySource('registry', layer)], log: { warn() {} } });
    const l = new LazyLayer({ blob: layer.digest, chunks: t, cache, chain, onChunkRead: recorder.hook(0) });
    const out = Buffer.alloc(3 * 4096);
    await l.readInto(t.offset(5) + 10, out, 0, 4096);
    await l.readInto(t.offset(1), out, 0, 3 * 4096);
    await l.readInto(t.offset(5), out, 0, 10);
    assert.equal(decodeTrace(encodeTrace(recorder.trace), [t.count]).entries, [[0, 5], [0, 6], [0, 1], [0, 2], [0, 3]]);
    await cache.close();
  }),
);

test.run();
