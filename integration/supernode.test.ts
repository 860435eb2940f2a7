import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, open, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { request } from 'undici';
import { LAZYBD_BIN, lazybd } from './support/cli.js';
import { FaultProxy } from './support/fault-proxy.js';
import { ForwardProxy } from './support/forward-proxy.js';
import { expectBytes, nbdRead } from './support/nbd-client.js';
import { spawnOwned, waitFor, type Owned } from './support/processes.js';
import { startRegistry, type RegistryServer } from './support/registry-server.js';
import { TEST_TOKEN, startSupernode, writeTokenFile, type SupernodeProcess } from './support/supernode-process.js';
import { metricByLabel, metricSum } from './support/prometheus-text.js';
import { pushRunsImage } from './support/runs-image.js';
import { requireTools } from './support/tools.js';
import { makeSelfSignedCert } from './support/token-server.js';

const run = promisify(execFile);
const SIZE = 32 << 20;
const RUN = 1 << 20;
const CHUNK = 65536;

interface Ctx {
  dir: string;
  registry: RegistryServer;
  /** In front of the registry: counts what the registry sends, can go down or stall. */
  proxy: FaultProxy;
  source: Buffer;
  runs: number[];
  /** The image at the registry (through the proxy). */
  remote: string;
  repository: string;
  layerDigest: string;
  tokenFile: string;
}

async function setup(dir: string): Promise<Ctx> {
  const registry = await startRegistry();
  const proxy = await FaultProxy.start(registry.host);
  const remote = `${proxy.host}/fleet/disk:v1`;
  const { source, runs, created } = await pushRunsImage(dir, remote, { size: SIZE, count: 4, runLength: RUN });
  return { dir, registry, proxy, source, runs, remote, repository: 'fleet/disk', layerDigest: created.layer, tokenFile: await writeTokenFile(dir) };
}

let n = 0;
/** A node: `lazybd serve` of the registry ref through the given supernodes, with its own store. */
async function node(c: Ctx, supernodes: string[], extra: string[] = []): Promise<{ daemon: Owned; uri: string; metric(name: string, label?: string, value?: string): Promise<number> }> {
  const name = `node${++n}`;
  const sock = join(c.dir, `${name}.sock`);
  const args = [LAZYBD_BIN, 'serve', c.remote, '--plain-http', '--socket', sock, '--io-timeout', '20', '--prefetch-rate', '0', '--metrics', '127.0.0.1:0', ...supernodes.flatMap((u) => ['--supernode', u]), ...(supernodes.length ? ['--token-file', c.tokenFile] : []), ...extra];
  const daemon = spawnOwned(process.execPath, args, { env: { ...process.env, LAZYBD_STORE: join(c.dir, name), XDG_RUNTIME_DIR: c.dir } });
  await waitFor(() => /at nbd\+unix:/.test(daemon.output()) || daemon.child.exitCode !== null, 20_000, 'serve to start');
  assert.ok(daemon.child.exitCode === null, `serve exited: ${daemon.output()}`);
  const uri = /at (nbd\+unix:\S+)/.exec(daemon.output())![1]!;
  const metricsUrl = /metrics at (http:\S+)/.exec(daemon.output())![1]!;
  const metric = async (metricName: string, label?: string, value?: string) => {
    const text = await (await fetch(metricsUrl)).text();
    return label ? (metricByLabel(text, metricName, label)[value!] ?? 0) : metricSum(text, metricName);
  };
  return { daemon, uri, metric };
}

/** Copies the whole device out and compares it with the source. */
async function copyMatches(c: Ctx, uri: string): Promise<void> {
  const out = join(c.dir, `copy-${++n}.raw`);
  await run('nbdcopy', [uri, out]);
  const copy = await readFile(out);
  await rm(out);
  assert.ok(copy.equals(c.source), 'device differs from the source');
}

function sha(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

/** Blob offset of a data byte: the layer packs data runs after the 512-byte header, in order. */
function blobOffsetOfRun(i: number): number {
  return 512 + i * RUN;
}

const sn = suite('supernode');
let ctx: Ctx | undefined;
const started: SupernodeProcess[] = [];

async function supernode(c: Ctx, cacheDir: string, extra: string[] = []): Promise<SupernodeProcess> {
  const s = await startSupernode(c.proxy.host, join(c.dir, cacheDir), c.tokenFile, extra);
  started.push(s);
  return s;
}

sn.before(async () => {
  if (!(await requireTools('docker-registry', 'nbdsh', 'nbdcopy'))) return;
  ctx = await setup(await mkdtemp(join(tmpdir(), 'lazybd-supernode-')));
});

sn.after.each(async () => {
  await Promise.all(started.splice(0).map((s) => s.stop()));
  if (ctx) ctx.proxy.mode = 'pass';
});

sn.after(async () => {
  if (!ctx) return;
  await ctx.proxy.stop();
  await ctx.registry.stop();
  await rm(ctx.dir, { recursive: true, force: true });
});

sn('every request without the token gets 401; with it /v2/ and /metrics answer', async () => {
  if (!ctx) return;
  const s = await supernode(ctx, 'auth');
  for (const path of ['/v2/', `/v2/${ctx.repository}/manifests/v1`, `/v2/${ctx.repository}/blobs/${ctx.layerDigest}`, '/metrics', '/lazybd/v1/preheat']) {
    const none = await s.call(path, undefined, null);
    assert.is(none.status, 401, `${path} without a token`);
    assert.is((await s.call(path, undefined, 'wrong-token-0123456789')).status, 401, `${path} with a wrong token`);
  }
  assert.is((await s.call('/v2/')).status, 200);
  assert.match((await s.call('/metrics')).text, /lazybd_supernode_requests_total/);
  const other = await s.call(`/v2/${ctx.repository}/manifests/v1?ns=203.0.113.9:5000`);
  assert.is(other.status, 403, 'a registry it does not front is refused');
});

sn('over TLS: a node that trusts the supernode certificate (--ca-file) reads through it; plain http is refused', async () => {
  if (!ctx) return;
  const c = ctx;
  await mkdir(join(c.dir, 'tls'), { recursive: true });
  const cert = await makeSelfSignedCert(join(c.dir, 'tls'), 'lazybd-supernode');
  const s = await supernode(c, 'tls', ['--tls-cert', cert.certFile, '--tls-key', cert.keyFile]);
  assert.match(s.url, /^https:\/\/127\.0\.0\.1:\d+$/);
  const plain = await request(s.url.replace('https:', 'http:') + '/v2/', { headers: { authorization: `Bearer ${TEST_TOKEN}` } }).then(
    (r) => r.statusCode,
    () => 'refused',
  );
  assert.ok(plain === 'refused' || plain === 400, `plain http to the TLS port: ${plain}`);
  const a = await node(c, [s.url], ['--ca-file', cert.certFile]);
  try {
    await copyMatches(c, a.uri);
    assert.ok((await a.metric('lazybd_source_bytes_total', 'source', 'supernode')) >= 4 * RUN, 'the data came through the TLS supernode');
    assert.is(await a.metric('lazybd_source_bytes_total', 'source', 'registry'), 0);
  } finally {
    await a.daemon.stop();
  }
});

sn('a world-readable token file is refused at start', async () => {
  if (!ctx) return;
  const loose = join(ctx.dir, 'loose.token');
  const h = await open(loose, 'w', 0o644);
  await h.write(`${TEST_TOKEN}\n`);
  await h.close();
  const r = await lazybd(['supernode', '--upstream', ctx.proxy.host, '--listen', '127.0.0.1:0', '--token-file', loose, '--cache-dir', join(ctx.dir, 'loose')]);
  assert.is(r.status, 2);
  assert.match(r.stderr, /readable by others.*E_SUPERNODE_CONFIG/);
});

sn('100 concurrent requests for one chunk make one registry fetch; every answer is the exact bytes', async () => {
  if (!ctx) return;
  const c = ctx;
  const s = await supernode(c, 'flight');
  const path = `/v2/${c.repository}/blobs/${c.layerDigest}`;
  const get = async (start: number, length: number) => {
    const res = await request(new URL(path, s.url), { headers: { authorization: `Bearer ${TEST_TOKEN}`, range: `bytes=${start}-${start + length - 1}` } });
    assert.is(res.statusCode, 206);
    return Buffer.from(await res.body.arrayBuffer());
  };
  // Learn the layout first (trailer, header and metadata: a few requests of their own).
  const warm = await get(blobOffsetOfRun(0), 4096);
  assert.ok(warm.equals(c.source.subarray(c.runs[0]!, c.runs[0]! + 4096)));
  const before = c.proxy.blobRequests;
  const bytesBefore = c.proxy.blobBytes;
  const joinsBefore = await s.metric('lazybd_chunk_fetch_joins_total');
  const hitsBefore = await s.metric('lazybd_chunk_cache_hits_total');
  // A 1000-byte range in the middle of chunk 5 of run 1.
  const at = blobOffsetOfRun(1) + 5 * CHUNK + 777;
  const answers = await Promise.all(Array.from({ length: 100 }, () => get(at, 1000)));
  const want = sha(c.source.subarray(c.runs[1]! + 5 * CHUNK + 777, c.runs[1]! + 5 * CHUNK + 1777));
  for (const a of answers) assert.is(sha(a), want);
  assert.is(c.proxy.blobRequests - before, 1, 'one registry request');
  assert.is(c.proxy.blobBytes - bytesBefore, CHUNK, 'exactly the one chunk');
  // Each of the other 99 either joined the fetch in flight or, arriving after it, hit the cache.
  const joins = (await s.metric('lazybd_chunk_fetch_joins_total')) - joinsBefore;
  const hits = (await s.metric('lazybd_chunk_cache_hits_total')) - hitsBefore;
  assert.is(joins + hits, 99, `joins ${joins} + cache hits ${hits}`);
  assert.ok(joins > 0, 'some requests joined the fetch in flight');
});

sn('nodes read through the supernode: the registry sends each chunk once, a second node costs it nothing', async () => {
  if (!ctx) return;
  const c = ctx;
  const s = await supernode(c, 'shared');
  const before = c.proxy.blobBytes;
  const a = await node(c, [s.url]);
  try {
    await copyMatches(c, a.uri);
  } finally {
    await a.daemon.stop();
  }
  const first = c.proxy.blobBytes - before;
  assert.ok(first >= 4 * RUN && first <= 4 * RUN + 64 * 1024, `first node: registry sent ${first} bytes for ${4 * RUN} of data`);
  const b = await node(c, [s.url]);
  try {
    await copyMatches(c, b.uri);
    assert.is(await b.metric('lazybd_source_bytes_total', 'source', 'registry'), 0, 'second node read nothing from the registry');
  } finally {
    await b.daemon.stop();
  }
  assert.is(c.proxy.blobBytes - before, first, 'the registry sent nothing more for the second node');
});

sn('preheat, then the registry goes away: a new node still starts and reads the whole image exactly', async () => {
  if (!ctx) return;
  const c = ctx;
  const s = await supernode(c, 'preheated');
  const pre = await lazybd(['preheat', c.remote, '--supernode', s.url, '--token-file', c.tokenFile, '--json']);
  assert.is(pre.status, 0, pre.stderr);
  const lines = pre.stdout.trim().split('\n').map((l) => JSON.parse(l) as { progress?: { bytes: { done: number; total: number } }; done?: boolean; chunks?: number });
  assert.ok(lines.some((l) => l.progress), 'progress lines on a pipe');
  const last = lines[lines.length - 1]!;
  assert.ok(last.done && last.chunks === 4 * RUN / CHUNK, `all ${4 * RUN / CHUNK} chunks: ${JSON.stringify(last)}`);
  // Again: nothing left to fetch, done at once.
  const again = await lazybd(['preheat', c.remote, '--supernode', s.url, '--token-file', c.tokenFile, '--json']);
  assert.is(again.status, 0, again.stderr);
  assert.is((JSON.parse(again.stdout.trim().split('\n').pop()!) as { fetched: number }).fetched, 0, 'a second preheat fetches nothing');

  c.proxy.mode = 'down';
  const a = await node(c, [s.url]);
  try {
    await copyMatches(c, a.uri);
  } finally {
    await a.daemon.stop();
  }
});

sn('a supernode killed mid-run: the node finishes from the registry with no I/O error, and uses it again once back', async () => {
  if (!ctx) return;
  const c = ctx;
  const s = await supernode(c, 'killed');
  const a = await node(c, [s.url]);
  try {
    const first = await nbdRead(a.uri, [[c.runs[0]!, RUN]]);
    assert.equal(first, [expectBytes(c.source.subarray(c.runs[0]!, c.runs[0]! + RUN))]);
    const viaSupernode = await a.metric('lazybd_source_bytes_total', 'source', 'supernode');
    assert.ok(viaSupernode >= RUN, 'the first run came from the supernode');
    s.process.child.kill('SIGKILL');
    await waitFor(() => s.process.child.exitCode !== null || s.process.child.signalCode !== null, 5000, 'the supernode to die');
    const rest = c.runs.slice(1, 3).map((at) => [at, RUN] as [number, number]);
    const got = await nbdRead(a.uri, rest);
    assert.equal(got, rest.map(([at]) => expectBytes(c.source.subarray(at, at + RUN))));
    assert.ok((await a.metric('lazybd_source_bytes_total', 'source', 'registry')) >= 2 * RUN, 'the rest came from the registry');
    // A supernode on the same address and cache: the node goes back to it.
    const port = new URL(s.url).port;
    const back = await supernode(c, 'killed', ['--listen', `127.0.0.1:${port}`]);
    assert.is(back.url, s.url);
    await new Promise((r) => setTimeout(r, 1200)); // the rest after a failure
    const registryBefore = await a.metric('lazybd_source_bytes_total', 'source', 'registry');
    const last = await nbdRead(a.uri, [[c.runs[3]!, RUN]]);
    assert.equal(last, [expectBytes(c.source.subarray(c.runs[3]!, c.runs[3]! + RUN))]);
    assert.is(await a.metric('lazybd_source_bytes_total', 'source', 'registry'), registryBefore, 'the supernode served the last run');
  } finally {
    await a.daemon.stop();
  }
});

sn('a supernode that corrupts bytes: the node detects it, reads from the registry, counts it', async () => {
  if (!ctx) return;
  const c = ctx;
  const s = await supernode(c, 'liar');
  const liar = await FaultProxy.start(new URL(s.url).host);
  liar.mode = 'corrupt';
  const a = await node(c, [`http://${liar.host}`]);
  try {
    await copyMatches(c, a.uri);
    assert.ok((await a.metric('lazybd_chunk_verify_failures_total', 'source', 'supernode')) > 0, 'verification failures counted');
    assert.ok((await a.metric('lazybd_source_bytes_total', 'source', 'registry')) >= 4 * RUN, 'good bytes came from the registry');
    assert.match(a.daemon.output(), /supernode sent corrupt data/);
  } finally {
    await a.daemon.stop();
    await liar.stop();
  }
});

sn('a restarted supernode keeps its cache: with the registry gone it serves what it had', async () => {
  if (!ctx) return;
  const c = ctx;
  const s = await supernode(c, 'restart');
  const a = await node(c, [s.url]);
  try {
    await copyMatches(c, a.uri);
  } finally {
    await a.daemon.stop();
  }
  await s.stop();
  c.proxy.mode = 'down';
  const again = await supernode(c, 'restart', ['--manifest-ttl', '0']);
  const b = await node(c, [again.url]);
  try {
    await copyMatches(c, b.uri);
  } finally {
    await b.daemon.stop();
  }
  assert.ok((await again.metric('lazybd_supernode_stale_manifests_total')) >= 1, 'the tag was served from the cache past its TTL');
});

sn('two supernodes share the chunks by rendezvous hashing; preheat fills each with its share; one down, the node fails over', async () => {
  if (!ctx) return;
  const c = ctx;
  const s1 = await supernode(c, 'pair1');
  const s2 = await supernode(c, 'pair2');
  const urls = [s1.url, s2.url];
  const before = c.proxy.blobBytes;
  const pre = await lazybd(['preheat', c.remote, '--supernode', s1.url, '--supernode', s2.url, '--token-file', c.tokenFile, '--json']);
  assert.is(pre.status, 0, pre.stderr);
  const data = 4 * RUN;
  const fetched = [await s1.metric('lazybd_preheat_bytes_done_total'), await s2.metric('lazybd_preheat_bytes_done_total')];
  assert.is(fetched[0]! + fetched[1]!, data, `the two preheats split the data exactly: ${fetched}`);
  assert.ok(fetched[0]! > data / 5 && fetched[1]! > data / 5, `both hold a share: ${fetched}`);
  assert.ok(c.proxy.blobBytes - before <= data + 64 * 1024, 'the registry sent each chunk once in all');

  c.proxy.mode = 'down';
  const a = await node(c, urls);
  try {
    await copyMatches(c, a.uri);
  } finally {
    await a.daemon.stop();
  }
  // s2 gone: its chunks fail over to s1, which fetches them from the registry once.
  c.proxy.mode = 'pass';
  await s2.stop();
  const registryBefore = c.proxy.blobBytes;
  const b = await node(c, urls);
  try {
    await copyMatches(c, b.uri);
    assert.is(await b.metric('lazybd_source_bytes_total', 'source', 'registry'), 0, 'the node read only from supernodes');
  } finally {
    await b.daemon.stop();
  }
  const refetched = c.proxy.blobBytes - registryBefore;
  assert.ok(refetched >= fetched[1]! && refetched <= fetched[1]! + 64 * 1024, `s1 fetched s2's share (${fetched[1]}) from the registry: ${refetched}`);
});

sn('a preheat job resumes after a supernode restart and ends done; a stalled registry makes a job fail at its timeout', async () => {
  if (!ctx) return;
  const c = ctx;
  c.proxy.mode = 'stall';
  const s = await supernode(c, 'resume');
  const created = await s.call('/lazybd/v1/preheat', { repository: c.repository, reference: 'v1', timeoutSeconds: 600 });
  assert.is(created.status, 202, created.text);
  const id = (created.body as { id: string }).id;
  const same = await s.call('/lazybd/v1/preheat', { repository: c.repository, reference: 'v1', timeoutSeconds: 600 });
  assert.is((same.body as { id: string }).id, id, 'the same request joins the running job');
  s.process.child.kill('SIGKILL');
  await waitFor(() => s.process.child.exitCode !== null || s.process.child.signalCode !== null, 5000, 'the supernode to die');
  c.proxy.dropConnections();
  c.proxy.mode = 'pass';
  const back = await supernode(c, 'resume');
  let job: { state: string; chunks: { done: number; total: number } } | undefined;
  await waitFor(async () => {
    job = (await back.call(`/lazybd/v1/preheat/${id}`)).body as typeof job;
    return job?.state === 'done' || job?.state === 'failed';
  }, 30_000, `the resumed job to end: ${back.process.output()}`);
  assert.is(job!.state, 'done', JSON.stringify(job));
  assert.is(job!.chunks.done, 4 * RUN / CHUNK);

  c.proxy.mode = 'stall';
  const t0 = Date.now();
  const late = await back.call('/lazybd/v1/preheat', { repository: c.repository, reference: 'v1-stalled', timeoutSeconds: 1 });
  const lateId = (late.body as { id: string }).id;
  let ended: { state: string; message?: string } | undefined;
  await waitFor(async () => {
    ended = (await back.call(`/lazybd/v1/preheat/${lateId}`)).body as typeof ended;
    return ended?.state === 'failed' || ended?.state === 'done';
  }, 10_000, 'the stalled job to fail');
  assert.is(ended!.state, 'failed');
  assert.match(ended!.message ?? '', /timed out after 1 s/);
  assert.ok(Date.now() - t0 < 5000, 'it failed at its timeout');
});

sn('registry traffic of nodes and supernodes goes through HTTP_PROXY, except for hosts in NO_PROXY', async () => {
  if (!ctx) return;
  const c = ctx;
  const proxy = await ForwardProxy.start();
  try {
    const viaProxy = { HTTP_PROXY: proxy.url, HTTPS_PROXY: proxy.url, NO_PROXY: '' };
    const pulled = await lazybd(['pull', c.remote, 'proxied:v1', '--plain-http', '--json'], { ...viaProxy, LAZYBD_STORE: join(c.dir, 'proxied') });
    assert.is(pulled.status, 0, pulled.stderr);
    assert.ok(proxy.targets.includes(c.proxy.host), `pull went through the proxy: ${proxy.targets}`);
    proxy.targets.length = 0;
    const direct = await lazybd(['pull', c.remote, 'direct:v1', '--plain-http'], { ...viaProxy, NO_PROXY: '127.0.0.1', LAZYBD_STORE: join(c.dir, 'direct') });
    assert.is(direct.status, 0, direct.stderr);
    assert.equal(proxy.targets, [], 'NO_PROXY hosts are reached directly');

    // A supernode behind the proxy fetches through it; the node, told NO_PROXY, reaches the supernode directly.
    const supernodeProcess = spawnOwned(process.execPath, [LAZYBD_BIN, 'supernode', '--upstream', c.proxy.host, '--plain-http', '--listen', '127.0.0.1:0', '--token-file', c.tokenFile, '--cache-dir', join(c.dir, 'behind-proxy'), '--json'], { env: { ...process.env, ...viaProxy } });
    try {
      await waitFor(() => /"listening"/.test(supernodeProcess.output()), 20_000, 'the supernode to listen');
      const url = (JSON.parse(/\{"listening".*\}/.exec(supernodeProcess.output())![0]) as { listening: string }).listening;
      const pre = await lazybd(['preheat', c.remote, '--supernode', url, '--token-file', c.tokenFile, '--json'], { NO_PROXY: '127.0.0.1' });
      assert.is(pre.status, 0, pre.stderr);
      assert.ok(proxy.targets.length > 0 && proxy.targets.every((t) => t === c.proxy.host), `the supernode's registry traffic went through the proxy: ${proxy.targets}`);
    } finally {
      await supernodeProcess.stop();
    }
  } finally {
    await proxy.stop();
  }
});

sn('the whole chain: a supernode that also runs the DHT; a cold node reads from a warm neighbour, nothing from supernode or registry', async () => {
  if (!ctx) return;
  const c = ctx;
  const s = await supernode(c, 'with-dht', ['--dht-listen', '127.0.0.1:0']);
  const bootstrap = (JSON.parse(/\{"listening".*\}/.exec(s.process.output())![0]) as { p2pBootstrap: string }).p2pBootstrap;
  assert.match(bootstrap, /^127\.0\.0\.1:\d+$/);
  const p2p = ['--p2p-bootstrap', bootstrap];
  const warm = await node(c, [s.url], p2p);
  try {
    await copyMatches(c, warm.uri);
    assert.ok((await warm.metric('lazybd_source_bytes_total', 'source', 'supernode')) >= 4 * RUN, 'the first node read through the supernode');
    const cold = await node(c, [s.url], p2p);
    try {
      await waitFor(async () => (await cold.metric('lazybd_peers_connected')) > 0, 20_000, 'the nodes to find each other');
      await copyMatches(c, cold.uri);
      assert.ok((await cold.metric('lazybd_source_bytes_total', 'source', 'peer')) >= 4 * RUN, 'the second node read from its neighbour');
      assert.is(await cold.metric('lazybd_source_bytes_total', 'source', 'supernode'), 0, 'nothing from the supernode');
      assert.is(await cold.metric('lazybd_source_bytes_total', 'source', 'registry'), 0, 'nothing from the registry');
    } finally {
      await cold.daemon.stop();
    }
  } finally {
    await warm.daemon.stop();
  }
});

sn('preheat of an image the registry does not have fails with a coded error naming it', async () => {
  if (!ctx) return;
  const c = ctx;
  const s = await supernode(c, 'missing');
  const r = await lazybd(['preheat', `${c.proxy.host}/fleet/disk:nope`, '--supernode', s.url, '--token-file', c.tokenFile]);
  assert.is(r.status, 4, r.stderr);
  assert.match(r.stderr, /preheat of .*disk:nope failed.*E_PREHEAT_FAILED/);
});

sn.run();
