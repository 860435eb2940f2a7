import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chunkVerifyFailures } from '../metrics/metrics.js';
import { SourceChain } from './source-chain.js';
import { flakyError, makeLayer, MemorySource, type TestLayer } from './test-support.js';

const quiet = { warn: () => {} };

function collect(): { warn(m: string): void; lines: string[] } {
  const lines: string[] = [];
  return { lines, warn: (m) => lines.push(m) };
}

function expected(layer: TestLayer, first: number, count: number): Buffer {
  const t = layer.chunks;
  return layer.blob.subarray(t.offset(first), t.offset(first + count - 1) + t.length(first + count - 1));
}

async function failuresOf(source: string): Promise<number> {
  return (await chunkVerifyFailures.get()).values.find((v) => v.labels.source === source)?.value ?? 0;
}

async function caught(p: Promise<unknown>): Promise<Error & { code?: string }> {
  try {
    await p;
  } catch (e) {
    return e as Error & { code?: string };
  }
  throw new Error('expected a rejection');
}

test('the chain hands a source back its corrupt response and names the bad chunks', async () => {
  const layer = await makeLayer(4096, 6);
  const t = layer.chunks;
  const reports: { response: Buffer; blob: string; chunks: readonly { offset: number; length: number }[] }[] = [];
  const returned: Buffer[] = [];
  const liar = new MemorySource('peer-y', layer, { corrupt: [t.offset(1), t.offset(4) + 9] });
  const reporting = {
    name: 'peer-y',
    fetch: async (blob: string, offset: number, length: number, signal: AbortSignal) => {
      const b = await liar.fetch(blob, offset, length, signal);
      returned.push(b);
      return b;
    },
    reportCorrupt: (response: Buffer, blob: string, chunks: readonly { offset: number; length: number }[]) => void reports.push({ response, blob, chunks }),
  };
  const chain = new SourceChain({ sources: [reporting, new MemorySource('registry', layer)], log: quiet });
  assert.equal(Buffer.concat(await chain.fetchRun(layer.digest, t, 0, 6)), expected(layer, 0, 6));
  assert.is(reports.length, 1);
  assert.ok(reports[0]!.response === returned[0], 'the very buffer the source returned');
  assert.is(reports[0]!.blob, layer.digest);
  assert.equal(reports[0]!.chunks, [
    { offset: t.offset(1), length: 4096 },
    { offset: t.offset(4), length: 4096 },
  ]);
});

test('a run comes back as verified chunk buffers, one request', async () => {
  const layer = await makeLayer(4096, 10, { tail: 1536 });
  const registry = new MemorySource('registry', layer);
  const chain = new SourceChain({ sources: [registry], log: quiet });
  const chunks = await chain.fetchRun(layer.digest, layer.chunks, 6, 4);
  assert.is(chunks.length, 4);
  assert.equal(Buffer.concat(chunks), expected(layer, 6, 4));
  assert.is(chunks[3]!.length, 1536, 'short last chunk');
  assert.equal(registry.requests, [{ offset: layer.chunks.offset(6), length: 3 * 4096 + 1536 }]);
});

test('chunks a corrupting first source garbles come from the second; counted, logged, never returned', async () => {
  const layer = await makeLayer(4096, 8);
  const t = layer.chunks;
  const peer = new MemorySource('peer-x', layer, { corrupt: [t.offset(2) + 7, t.offset(5) + 4095] });
  const registry = new MemorySource('registry', layer);
  const log = collect();
  const before = await failuresOf('peer-x');
  const chain = new SourceChain({ sources: [peer, registry], log });
  const chunks = await chain.fetchRun(layer.digest, t, 0, 8);
  assert.equal(Buffer.concat(chunks), expected(layer, 0, 8));
  assert.is(await failuresOf('peer-x'), before + 2);
  assert.equal(
    registry.requests.map((r) => [t.indexOf(r.offset), r.length]),
    [
      [2, 4096],
      [5, 4096],
    ],
    'only the bad chunks are asked of the next source',
  );
  assert.is(log.lines.length, 1);
  assert.match(log.lines[0]!, /peer-x .*sha256:[0-9a-f]{64} chunk 2, 5/);
});

test('when every source corrupts a chunk the run fails with E_CHUNK_UNAVAILABLE, no bytes returned', async () => {
  const layer = await makeLayer(4096, 4);
  const at = layer.chunks.offset(3) + 1;
  const chain = new SourceChain({ sources: [new MemorySource('peer', layer, { corrupt: [at] }), new MemorySource('registry', layer, { corrupt: [at] })], log: quiet });
  const err = await caught(chain.fetchRun(layer.digest, layer.chunks, 0, 4));
  assert.is(err.code, 'E_CHUNK_UNAVAILABLE');
  assert.match(err.message, /chunk 3 of sha256:/);
  assert.match(err.message, /peer: digest mismatch for chunk 3; registry: digest mismatch for chunk 3/);
  assert.is((err as { errno?: string }).errno, 'EIO');
});

test('retryable failures are retried with backoff on the same source; then it delivers', async () => {
  const layer = await makeLayer(4096, 4);
  const registry = new MemorySource('registry', layer, { fail: (n) => (n < 3 ? flakyError('503 from registry', true) : undefined) });
  const chain = new SourceChain({ sources: [registry], attemptsPerSource: 3, backoffMs: 20, log: quiet });
  const t0 = performance.now();
  const chunks = await chain.fetchRun(layer.digest, layer.chunks, 0, 4);
  assert.equal(Buffer.concat(chunks), expected(layer, 0, 4));
  assert.is(registry.requests.length, 3);
  assert.ok(performance.now() - t0 >= 55, 'waited 20 + 40 ms between tries');
});

test('non-retryable failures move to the next source at once; all failing names every source and reason', async () => {
  const layer = await makeLayer(4096, 4);
  const peer = new MemorySource('peer', layer, { fail: () => Object.assign(new Error('blob unknown'), { code: 'E_REGISTRY_BLOB_UNKNOWN', retryable: false }) });
  const registry = new MemorySource('registry', layer, { fail: () => flakyError('connection reset', true) });
  const chain = new SourceChain({ sources: [peer, registry], attemptsPerSource: 3, backoffMs: 1, log: quiet });
  const err = await caught(chain.fetchRun(layer.digest, layer.chunks, 1, 2));
  assert.is(err.code, 'E_CHUNK_UNAVAILABLE');
  assert.match(err.message, /chunks 1-2 of sha256:[0-9a-f]{64} \(blob offset 4608\)/);
  assert.match(err.message, /peer: E_REGISTRY_BLOB_UNKNOWN: blob unknown/);
  assert.match(err.message, /registry: connection reset/);
  assert.is(peer.requests.length, 1);
  assert.is(registry.requests.length, 3);
});

test('a stalled source is abandoned after the attempt timeout and the next one answers', async () => {
  const layer = await makeLayer(4096, 2);
  const peer = new MemorySource('peer', layer, { stall: true });
  const chain = new SourceChain({ sources: [peer, new MemorySource('registry', layer)], attemptTimeoutMs: 50, attemptsPerSource: 3, backoffMs: 1, log: quiet });
  const t0 = performance.now();
  const chunks = await chain.fetchRun(layer.digest, layer.chunks, 0, 2);
  assert.equal(Buffer.concat(chunks), expected(layer, 0, 2));
  const took = performance.now() - t0;
  assert.ok(took >= 45 && took < 500, `one 50 ms attempt on the stalled peer, took ${took}`);
  assert.is(peer.requests.length, 1, 'a stall is not retried on the same source');
});

test('all sources stalling: E_CHUNK_UNAVAILABLE naming each source and why', async () => {
  const layer = await makeLayer(4096, 2);
  const chain = new SourceChain({ sources: [new MemorySource('peer', layer, { stall: true }), new MemorySource('registry', layer, { stall: true })], attemptTimeoutMs: 100, ioTimeoutMs: 1000, log: quiet });
  const t0 = performance.now();
  const err = await caught(chain.fetchRun(layer.digest, layer.chunks, 0, 2));
  const took = performance.now() - t0;
  assert.is(err.code, 'E_CHUNK_UNAVAILABLE');
  assert.ok(took >= 190 && took < 500, `took ${took}`);
  assert.match(err.message, /chunks 0-1 of sha256:/);
  assert.match(err.message, /peer: no answer within 100 ms; registry: no answer within 100 ms/);
});

test('the I/O timeout bounds the whole run, even while a source is still being waited for', async () => {
  const layer = await makeLayer(4096, 2);
  const chain = new SourceChain({ sources: [new MemorySource('supernode', layer, { stall: true }), new MemorySource('registry', layer)], attemptTimeoutMs: 5000, ioTimeoutMs: 300, log: quiet });
  const t0 = performance.now();
  const err = await caught(chain.fetchRun(layer.digest, layer.chunks, 0, 1));
  const took = performance.now() - t0;
  assert.is(err.code, 'E_CHUNK_UNAVAILABLE');
  assert.ok(took >= 290 && took < 600, `rejected at the I/O timeout, took ${took}`);
  assert.match(err.message, /\(I\/O timeout 300 ms\): supernode: I\/O timeout; registry: not tried/);
});

test('no sources: unavailable at once', async () => {
  const layer = await makeLayer(4096, 1);
  const err = await caught(new SourceChain({ sources: [], log: quiet }).fetchRun(layer.digest, layer.chunks, 0, 1));
  assert.is(err.code, 'E_CHUNK_UNAVAILABLE');
  assert.match(err.message, /no sources configured/);
});

test('a short response is retried', async () => {
  const layer = await makeLayer(4096, 2);
  let n = 0;
  const short = {
    name: 'registry',
    fetch: async (_blob: string, offset: number, length: number) => layer.blob.subarray(offset, offset + length - (++n === 1 ? 100 : 0)),
  };
  const chunks = await new SourceChain({ sources: [short], backoffMs: 1, log: quiet }).fetchRun(layer.digest, layer.chunks, 0, 2);
  assert.equal(Buffer.concat(chunks), expected(layer, 0, 2));
  assert.is(n, 2);
});

test.run();
