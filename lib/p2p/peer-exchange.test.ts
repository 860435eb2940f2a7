import HyperDHT from 'hyperdht';
import Hyperswarm from 'hyperswarm';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { peerBans, peerFetchThrough, peerRequestSeconds } from '../metrics/metrics.js';
import { makeLayer, type TestLayer } from '../source/test-support.js';
import { startDhtBootstrap, type DhtBootstrap } from './dht-bootstrap.js';
import { layerKey } from './layer-key.js';
import { FrameDecoder, encodeFrame, type PeerMessage } from './messages.js';
import { Msg, PeerErrorCode } from './protocol.js';
import { forgetfulLayer, leechLayer, lyingLayer, stallingLayer, startNode, until, type TestNode } from './test-support.js';
import { seededRandom } from '../../integration/support/seeded-random.js';

// Real hyperswarm peers on a closed DHT on 127.0.0.1 (bootstrap + two persistent nodes,
// random ports). Each test has its own layer, hence its own topics.

let net: DhtBootstrap;
const nodes: TestNode[] = [];

test.before(async () => {
  net = await startDhtBootstrap();
});

test.after(async () => {
  await Promise.allSettled(nodes.splice(0).map((n) => n.close()));
  await net.close();
});

async function node(layer: TestLayer, options: Parameters<typeof startNode>[2] = {}): Promise<TestNode> {
  const n = await startNode(net, layer, options);
  nodes.push(n);
  return n;
}

const data = (layer: TestLayer) => layer.blob.subarray(layer.chunks.dataOffset, layer.chunks.dataOffset + layer.chunks.dataLength);
const key = (layer: TestLayer) => layerKey(layer.digest).toString('hex');
const bans = async () => (await peerBans.get()).values[0]?.value ?? 0;
const okRequests = async () => (await peerRequestSeconds.get()).values.find((v) => v.metricName?.endsWith('_count') && v.labels.outcome === 'ok')?.value ?? 0;

/** Waits until `n` sees a peer offering all of the layer (after HELLO and HAVE). */
const seesFullPeer = (n: TestNode, layer: TestLayer, peers = 1) =>
  until(n.swarm, () => n.swarm.candidates(key(layer), 0, layer.chunks.count).length >= peers, `${peers} peer(s) with the whole layer`);

test('a cold node reads the whole layer from a warm neighbour: zero registry bytes', async () => {
  const layer = await makeLayer(65536, 24, { tail: 1000 });
  const warm = await node(layer, { warm: true });
  const cold = await node(layer);
  await seesFullPeer(cold, layer);
  const t = layer.chunks;
  const requestsBefore = await okRequests();
  assert.equal(await cold.read(t.dataOffset, t.dataLength), data(layer));
  assert.is((await okRequests()) - requestsBefore, 2, 'two 1 MiB runs timed as peer requests');
  await cold.lazy.fetchChunks(0, t.count);
  assert.ok(cold.lazy.complete, 'the cold node cached what its neighbour sent');
  assert.is(cold.registry.requests.length, 0, 'nothing from the registry');
  assert.is(warm.registry.requests.length, 0);
});

test('HAVE-UPDATEs: a node that caches chunks later becomes a source for them', async () => {
  const layer = await makeLayer(65536, 16);
  const t = layer.chunks;
  const a = await node(layer);
  const b = await node(layer);
  await until(b.swarm, () => b.swarm.connected === 1 && a.swarm.connected === 1, 'a connection');
  // a fetches chunks 4-7 from its registry; b learns of them without reconnecting.
  assert.equal(await a.read(t.offset(4), 4 * 65536), layer.blob.subarray(t.offset(4), t.offset(8)));
  await until(b.swarm, () => b.swarm.candidates(key(layer), 4, 4).length === 1, 'have-update for chunks 4-7');
  assert.is(b.swarm.candidates(key(layer), 3, 1).length, 0, 'chunk 3 is not claimed');
  assert.equal(await b.read(t.offset(5), 65536 + 10), layer.blob.subarray(t.offset(5), t.offset(6) + 10));
  assert.is(b.registry.requests.length, 0);
});

test('a peer that sends corrupt data is banned by key; the data is right and reads go on', async () => {
  const layer = await makeLayer(65536, 12);
  const t = layer.chunks;
  const before = await bans();
  const liar = await node(layer, { warm: true, share: lyingLayer });
  const cold = await node(layer);
  await seesFullPeer(cold, layer);
  assert.equal(await cold.read(t.offset(0), 2 * 65536), layer.blob.subarray(t.offset(0), t.offset(2)), 'first read correct');
  assert.ok(cold.swarm.isBanned(liar.swarm.publicKey.toString('hex')), 'liar banned by its public key');
  assert.is(await bans(), before + 1);
  assert.ok(cold.warnings.some((w) => w.includes('banned peer') && w.includes(liar.swarm.publicKey.toString('hex'))), 'the ban is logged');
  assert.is(cold.registry.bytesServed, 2 * 65536, 'the corrupt chunks came again from the registry');
  await until(cold.swarm, () => cold.swarm.connected === 0, 'liar disconnected');
  // An honest neighbour arrives: reads go on from it, the liar never gets back in.
  await node(layer, { warm: true });
  await seesFullPeer(cold, layer);
  assert.equal(await cold.read(t.offset(2), 10 * 65536), layer.blob.subarray(t.offset(2), t.offset(12)));
  assert.is(cold.registry.bytesServed, 2 * 65536, 'the rest came from the honest peer');
  assert.is(cold.swarm.connected, 1, 'only the honest peer is connected');
});

test('a peer that stalls: the read completes from the registry within the peer timeout', async () => {
  const layer = await makeLayer(65536, 4);
  const t = layer.chunks;
  await node(layer, { warm: true, share: stallingLayer });
  const cold = await node(layer, { swarm: { requestTimeoutMs: 300 } });
  await seesFullPeer(cold, layer);
  const started = performance.now();
  assert.equal(await cold.read(t.offset(0), 4 * 65536), layer.blob.subarray(t.offset(0), t.offset(4)));
  const elapsed = performance.now() - started;
  assert.ok(elapsed >= 300 && elapsed < 1500, `took ${elapsed.toFixed(0)} ms with a 300 ms peer timeout`);
  assert.is(cold.registry.bytesServed, 4 * 65536);
});

test('a peer that no longer holds what it announced: the next peer serves, not the registry', async () => {
  const layer = await makeLayer(65536, 8);
  const t = layer.chunks;
  const forgetful = await node(layer, { warm: true, share: forgetfulLayer });
  const honest = await node(layer, { warm: true });
  const cold = await node(layer);
  await seesFullPeer(cold, layer, 2);
  for (let i = 0; i < t.count; i++) assert.equal(await cold.read(t.offset(i), 65536), layer.blob.subarray(t.offset(i), t.offset(i + 1)));
  assert.is(cold.registry.requests.length, 0, 'nothing from the registry');
  assert.is(honest.swarm.uploads, t.count);
  assert.is(forgetful.swarm.uploads, 0);
  assert.is(cold.swarm.bans, 0, 'NOT-HELD is no offence');
});

test('uploads keep to --p2p-upload-rate', async () => {
  const layer = await makeLayer(65536, 32);
  const t = layer.chunks;
  const rate = 2e6;
  const warm = await node(layer, { warm: true, swarm: { uploadRate: rate } });
  const cold = await node(layer);
  await seesFullPeer(cold, layer);
  const started = performance.now();
  assert.equal(await cold.read(t.dataOffset, t.dataLength), data(layer));
  const seconds = (performance.now() - started) / 1000;
  assert.is(cold.registry.requests.length, 0, 'all of it from the peer');
  // At most rate × T + burst bytes in T seconds (the bucket's burst is 256 KiB).
  const floor = (t.dataLength - warm.swarm.gate.burst) / rate;
  assert.ok(seconds >= floor, `${t.dataLength} bytes in ${seconds.toFixed(2)} s: faster than ${rate} B/s allows (${floor.toFixed(2)} s)`);
  assert.ok(seconds < floor + 2, `${seconds.toFixed(2)} s: far slower than the limit`);
});

test('load is spread over peers that hold the same chunks', async () => {
  const layer = await makeLayer(4096, 64);
  const t = layer.chunks;
  const rand = seededRandom(7);
  const warm = [await node(layer, { warm: true }), await node(layer, { warm: true }), await node(layer, { warm: true })];
  const served = () => warm.map((w) => w.swarm.uploads);
  const cold = await node(layer, { random: () => rand(2 ** 32) / 2 ** 32 });
  await seesFullPeer(cold, layer, 3);
  for (let i = 0; i < t.count; i++) assert.equal(await cold.read(t.offset(i), t.length(i)), layer.blob.subarray(t.offset(i), t.offset(i) + t.length(i)));
  assert.is(cold.registry.requests.length, 0);
  const counts = served();
  assert.is(counts.reduce((a, b) => a + b, 0), t.count);
  // Who gets how many follows measured latency (peer-choice.test.ts pins the weighting); here: not always one.
  assert.ok(counts.filter((c) => c > 0).length >= 2, `uploads per peer ${counts.join(', ')}`);
});

test('a slow peer is deprioritised: the fast one serves most requests', async () => {
  const layer = await makeLayer(4096, 48);
  const t = layer.chunks;
  // 16 KiB/s: after its 16 KiB burst, a chunk every 250 ms.
  const slow = await node(layer, { warm: true, swarm: { uploadRate: 16384 } });
  const fast = await node(layer, { warm: true });
  const rand = seededRandom(11);
  const cold = await node(layer, { random: () => rand(2 ** 32) / 2 ** 32 });
  await seesFullPeer(cold, layer, 2);
  for (let i = 0; i < t.count; i++) assert.equal(await cold.read(t.offset(i), 4096), layer.blob.subarray(t.offset(i), t.offset(i) + 4096));
  assert.is(cold.registry.requests.length, 0);
  assert.is(slow.swarm.uploads + fast.swarm.uploads, t.count);
  assert.ok(fast.swarm.uploads >= 36, `fast peer served ${fast.swarm.uploads} of ${t.count}, slow ${slow.swarm.uploads}`);
});

test('all peers killed mid-run: the node finishes from the registry without an I/O error', async () => {
  const layer = await makeLayer(65536, 32);
  const t = layer.chunks;
  // Slow enough (about 0.75 s after the bursts) that the peers die with most runs still to come.
  const warm = [await node(layer, { warm: true, swarm: { uploadRate: 1e6 } }), await node(layer, { warm: true, swarm: { uploadRate: 1e6 } })];
  const cold = await node(layer, { maxRunBytes: 4 * 65536 });
  await seesFullPeer(cold, layer, 2);
  // The peers go away as soon as the first chunk from them lands.
  const killed = new Promise<void>((resolve) => {
    const off = cold.lazy.onLocal(() => {
      off();
      void Promise.all(warm.map((w) => w.swarm.destroy())).then(() => resolve());
    });
  });
  assert.equal(await cold.read(t.dataOffset, t.dataLength), data(layer));
  await killed;
  const fromRegistry = cold.registry.bytesServed;
  assert.ok(fromRegistry > 0 && fromRegistry < t.dataLength, `${fromRegistry} of ${t.dataLength} bytes from the registry`);
});

test('upload slots are per peer: a neighbour over the limit is choked and waits for UNCHOKE, up to the peer timeout', async () => {
  const layer = await makeLayer(65536, 24);
  const t = layer.chunks;
  const warm = await node(layer, { warm: true, swarm: { maxUploads: 1, uploadRate: 1e6 } });
  const a = await node(layer, { maxRunBytes: 4 * 65536 });
  const b = await node(layer, { maxRunBytes: 4 * 65536 });
  const impatient = await node(layer, { swarm: { requestTimeoutMs: 200 } });
  for (const n of [a, b, impatient]) await seesFullPeer(n, layer);
  const refusals = async () => (await peerRequestSeconds.get()).values.find((v) => v.metricName?.endsWith('_count') && v.labels.outcome === 'error')?.value ?? 0;
  const refusedBefore = await refusals();
  // Each reads two runs at once: one node gets the slot, the other is refused, waits, and is served after.
  const expect = layer.blob.subarray(t.offset(0), t.offset(8));
  const [ra, rb] = await Promise.all([a.read(t.offset(0), 8 * 65536), b.read(t.offset(0), 8 * 65536)]);
  assert.equal(ra, expect);
  assert.equal(rb, expect);
  assert.ok((await refusals()) > refusedBefore, 'one of them was refused (BUSY) first');
  assert.equal([a.registry.bytesServed, b.registry.bytesServed], [0, 0], 'both served by the peer');
  // The refused one may take some runs from the other, which holds them by then.
  assert.is(warm.swarm.uploads + a.swarm.uploads + b.swarm.uploads, 4, 'four runs, each served once');
});

test('a neighbour choked for longer than the peer timeout falls through to the registry, in that time', async () => {
  const layer = await makeLayer(65536, 24);
  const t = layer.chunks;
  const warm = await node(layer, { warm: true, swarm: { maxUploads: 1, uploadRate: 1e6 } });
  // Takes the one slot for ~1.3 s (1.5 MiB at 1 MB/s after the burst) and never serves or fetches for anyone.
  const hog = await node(layer, { share: leechLayer, maxRunBytes: 4 * 65536 });
  const impatient = await node(layer, { swarm: { requestTimeoutMs: 200 } });
  for (const n of [hog, impatient]) await seesFullPeer(n, layer);
  const hogFirstChunk = new Promise<void>((resolve) => {
    const off = hog.lazy.onLocal(() => {
      off();
      resolve();
    });
  });
  const hogRead = hog.read(t.dataOffset, t.dataLength);
  await hogFirstChunk;
  const started = performance.now();
  assert.equal(await impatient.read(t.offset(8), 8 * 65536), layer.blob.subarray(t.offset(8), t.offset(16)));
  const elapsed = performance.now() - started;
  assert.is(impatient.registry.bytesServed, 8 * 65536, `the registry served the node that could not wait (${elapsed.toFixed(0)} ms, warm served ${warm.swarm.uploads}, hog local ${hog.lazy.bytesLocal})`);
  assert.ok(elapsed >= 200 && elapsed < 1000, `${elapsed.toFixed(0)} ms with a 200 ms peer timeout`);
  assert.equal(await hogRead, data(layer));
  assert.is(hog.registry.bytesServed, 0);
  assert.is(warm.swarm.uploads, 6);
});

/** Waits until each node sees all the others sharing the layer. */
async function meshed(all: TestNode[], layer: TestLayer): Promise<void> {
  for (const n of all) await until(n.swarm, () => n.swarm.peersSharing([layer.digest]) === all.length - 1, `${all.length - 1} peers sharing the layer`);
}

test('chunks no peer holds yet: a fleet reading them at once fetches each from the registry once, through its owner', async () => {
  const layer = await makeLayer(65536, 64);
  const t = layer.chunks;
  // Few upload slots: most requests meet a busy owner and wait for it or for those it served.
  // One after another: a node finds those that announced the topic before it joined.
  const fleet: TestNode[] = [];
  for (let i = 0; i < 5; i++) fleet.push(await node(layer, { registry: { delayMs: 20 }, swarm: { maxUploads: 2 } }));
  await meshed(fleet, layer);
  const served = async () => (await peerFetchThrough.get()).values.find((v) => v.labels.role === 'served')?.value ?? 0;
  const servedBefore = await served();
  const reads = await Promise.all(fleet.map((n) => n.read(t.dataOffset, t.dataLength)));
  for (const r of reads) assert.equal(r, data(layer));
  const fromRegistry = fleet.map((n) => n.registry.bytesServed);
  assert.is(fromRegistry.reduce((a, b) => a + b, 0), t.dataLength, `registry bytes per node ${fromRegistry.join(', ')}: each chunk once`);
  assert.ok(fromRegistry.filter((b) => b > 0).length >= 2, 'the owners are spread over the fleet');
  assert.ok((await served()) > servedBefore, 'owners fetched for their neighbours');
});

test('an owner that stalls: the read falls through within the peer timeout, and the owner is passed over after', async () => {
  const layer = await makeLayer(65536, 16 * 16);
  const t = layer.chunks;
  const staller = await node(layer, { share: stallingLayer });
  const cold = await node(layer, { swarm: { requestTimeoutMs: 300 } });
  await meshed([staller, cold], layer);
  const group = 16 * 65536;
  const owned = Array.from({ length: 16 }, (_, g) => t.dataOffset + g * group).filter((at) => cold.swarm.ownerOf(key(layer), t.offset(t.indexOf(at)), new Set()) !== undefined);
  assert.ok(owned.length >= 2, `the staller owns ${owned.length} of 16 groups`);
  const timed = async (at: number) => {
    const started = performance.now();
    assert.equal(await cold.read(at, 65536), layer.blob.subarray(at, at + 65536));
    return performance.now() - started;
  };
  const first = await timed(owned[0]!);
  assert.ok(first >= 300, `${first.toFixed(0)} ms: the owner was asked and waited for`);
  const second = await timed(owned[1]!);
  assert.ok(second < 300, `${second.toFixed(0)} ms: a stalled owner is not asked again`);
  assert.is(cold.registry.bytesServed, 2 * 65536, 'both chunks from the registry');
});

test('CANCEL: a request given up on stops being served and frees the upload slot', async () => {
  const layer = await makeLayer(65536, 8);
  const t = layer.chunks;
  // One slot, 64 KiB/s: after the first chunk the next takes a second, longer than the 300 ms timeout.
  const warm = await node(layer, { warm: true, swarm: { maxUploads: 1, uploadRate: 65536 } });
  const impatient = await node(layer, { swarm: { requestTimeoutMs: 300 } });
  await seesFullPeer(impatient, layer);
  assert.equal(await impatient.read(t.offset(0), 4 * 65536), layer.blob.subarray(t.offset(0), t.offset(4)));
  assert.ok(impatient.registry.bytesServed >= 3 * 65536, 'the stalled part came from the registry');
  // Had the request gone on being served, its slot would still be taken and this node choked.
  const next = await node(layer, { swarm: { requestTimeoutMs: 5000 } });
  await seesFullPeer(next, layer);
  assert.equal(await next.read(t.offset(4), 65536), layer.blob.subarray(t.offset(4), t.offset(5)));
  assert.is(next.registry.requests.length, 0, 'served by the peer');
  assert.is(warm.swarm.uploads, 1, 'only the second request was served in full');
});

test('a peer speaking another protocol version gets a coded ERROR and is disconnected, not banned', async () => {
  const layer = await makeLayer(4096, 4);
  const n = await node(layer, { warm: true });
  const before = await bans();
  const stranger = new Hyperswarm({ dht: new HyperDHT({ bootstrap: net.bootstrap, host: '127.0.0.1' }) });
  try {
    const reply = new Promise<{ messages: PeerMessage[]; closed: boolean }>((resolve) => {
      stranger.on('connection', (socket) => {
        const messages: PeerMessage[] = [];
        const decoder = new FrameDecoder((m) => messages.push(m));
        socket.on('data', (d: Buffer) => decoder.push(d));
        socket.on('error', () => {});
        socket.on('close', () => resolve({ messages, closed: true }));
        socket.write(encodeFrame({ t: Msg.Hello, v: 99, layers: [layerKey(layer.digest)] }));
      });
    });
    stranger.join(layerKey(layer.digest), { server: false, client: true });
    const { messages, closed } = await reply;
    assert.ok(closed);
    assert.is(messages[0]?.t, Msg.Hello, 'our HELLO came first');
    const last = messages[messages.length - 1]!;
    assert.ok(last.t === Msg.Error && last.code === PeerErrorCode.Version && last.id === undefined, `ended with ${JSON.stringify(last)}`);
    assert.not.ok(messages.some((m) => m.t === Msg.Have), 'nothing about our layers for a stranger');
    assert.is(await bans(), before);
    assert.not.ok(n.swarm.isBanned(stranger.keyPair.publicKey.toString('hex')));
  } finally {
    await stranger.destroy();
  }
});

test.run();
