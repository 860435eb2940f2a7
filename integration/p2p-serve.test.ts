import { randomBytes, randomInt } from 'node:crypto';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { DaemonStatus } from '../lib/control/api.js';
import { LAZYBD_BIN, lazybd } from './support/cli.js';
import { FaultProxy } from './support/fault-proxy.js';
import { createAndPush } from './support/push-image.js';
import { spawnOwned, waitFor, type Owned } from './support/processes.js';
import { startRegistry, type RegistryServer } from './support/registry-server.js';
import { requireTools } from './support/tools.js';

// Daemons exchanging chunks over hyperswarm on a closed DHT on 127.0.0.1 (lazybd p2p-bootstrap), the registry
// behind a proxy that counts blob bytes.

const run = promisify(execFile);
const SIZE = 32 << 20;
const DATA = 4 << 20;

interface Ctx {
  dir: string;
  registry: RegistryServer;
  proxy: FaultProxy;
  /** `lazybd p2p-bootstrap`, and the --p2p-bootstrap value it printed. */
  dht: Owned;
  bootstrap: string;
  source: Buffer;
  remote: string;
}

interface Served {
  daemon: Owned;
  uri: string;
  metrics: string;
}

async function setup(dir: string): Promise<Ctx> {
  const registry = await startRegistry();
  const proxy = await FaultProxy.start(registry.host);
  const dht = spawnOwned(process.execPath, [LAZYBD_BIN, 'p2p-bootstrap', '--listen', '127.0.0.1:0', '--json']);
  await waitFor(() => /"bootstrap"/.test(dht.output()) || dht.child.exitCode !== null, 20_000, 'p2p-bootstrap to start');
  const bootstrap = (JSON.parse(dht.output()) as { bootstrap: string }).bootstrap;
  const source = Buffer.alloc(SIZE);
  for (let i = 0; i < 4; i++) randomBytes(DATA / 4).copy(source, i * (8 << 20) + randomInt(0, 64) * 4096);
  const remote = `${proxy.host}/p2p/disk:v1`;
  await createAndPush(dir, source, remote);
  return { dir, registry, proxy, dht, bootstrap, source, remote };
}

async function serve(c: Ctx, store: string, extra: string[] = []): Promise<Served> {
  const daemon = spawnOwned(
    process.execPath,
    [LAZYBD_BIN, 'serve', c.remote, '--plain-http', '--socket', join(c.dir, `${store}.sock`), '--io-timeout', '15', '--prefetch-rate', '0', '--metrics', '127.0.0.1:0', '--p2p-bootstrap', c.bootstrap, ...extra],
    { env: { ...process.env, LAZYBD_STORE: join(c.dir, store), XDG_RUNTIME_DIR: c.dir } },
  );
  await waitFor(() => /metrics at http/.test(daemon.output()) || daemon.child.exitCode !== null, 20_000, 'serve to start');
  assert.ok(daemon.child.exitCode === null, `serve exited: ${daemon.output()}`);
  return { daemon, uri: /at (nbd\+unix:\S+)/.exec(daemon.output())![1]!, metrics: /metrics at (http:\S+)/.exec(daemon.output())![1]! };
}

async function metric(s: Served, re: RegExp): Promise<number> {
  return Number(re.exec(await (await fetch(s.metrics)).text())?.[1] ?? 0);
}

/** Waits until the daemon's published status shows a peer offering chunks of its image. */
async function seesPeer(c: Ctx, s: Served): Promise<void> {
  await waitFor(
    async () => {
      const r = await lazybd(['status', '--json'], { XDG_RUNTIME_DIR: c.dir });
      const statuses = JSON.parse(r.stdout) as DaemonStatus[];
      return (statuses.find((d) => d.pid === s.daemon.child.pid)?.exports[0]?.peers ?? 0) >= 1;
    },
    15_000,
    'a peer offering the image',
  );
}

async function copyOut(c: Ctx, s: Served, name: string): Promise<Buffer> {
  const out = join(c.dir, name);
  await run('nbdcopy', [s.uri, out]);
  return readFile(out);
}

const p2p = suite('p2p serve');
let ctx: Ctx | undefined;
let warm: Served | undefined;

p2p.before(async () => {
  if (!(await requireTools('docker-registry', 'nbdcopy'))) return;
  ctx = await setup(await mkdtemp(join(tmpdir(), 'lazybd-p2p-')));
  // One daemon reads everything from the registry; the others find it as a neighbour.
  warm = await serve(ctx, 'warm', ['--p2p-upload-rate', '4']);
  assert.ok((await copyOut(ctx, warm, 'warm.raw')).equals(ctx.source));
});

p2p.after(async () => {
  if (!ctx) return;
  await warm?.daemon.stop();
  await ctx.dht.stop();
  await ctx.proxy.stop();
  await ctx.registry.stop();
  await rm(ctx.dir, { recursive: true, force: true });
});

p2p('a cold daemon copies the image from its warm neighbour: zero registry blob bytes', async () => {
  if (!ctx || !warm) return;
  const c = ctx;
  const cold = await serve(c, 'cold');
  try {
    await seesPeer(c, cold);
    const before = c.proxy.blobBytes;
    assert.ok((await copyOut(c, cold, 'cold.raw')).equals(c.source), 'device differs from the source');
    assert.is(c.proxy.blobBytes - before, 0, 'blob bytes from the registry');
    assert.ok((await metric(cold, /lazybd_source_bytes_total\{source="peer"\} (\d+)/)) >= DATA, 'peer bytes counted as a source');
    assert.ok((await metric(cold, /lazybd_peer_bytes_total\{direction="in"\} (\d+)/)) >= DATA, 'peer bytes in');
    assert.ok((await metric(warm, /lazybd_peer_bytes_total\{direction="out"\} (\d+)/)) >= DATA, 'peer bytes out on the warm side');
    assert.is(await metric(cold, /lazybd_peers_connected (\d+)/), 1);
    const status = await lazybd(['status'], { XDG_RUNTIME_DIR: c.dir });
    assert.match(status.stdout, /P2P: 1 peer\b/);
  } finally {
    await cold.daemon.stop();
  }
});

p2p('the only peer killed mid-copy: the copy finishes from the registry, no I/O error', async () => {
  if (!ctx || !warm) return;
  const c = ctx;
  // A second warm daemon (a slow uploader: 4 MiB take ~2 s), killed once bytes flow from it.
  const victim = await serve(c, 'victim', ['--p2p-upload-rate', '2']);
  const cold = await serve(c, 'cold2');
  try {
    assert.ok((await copyOut(c, victim, 'victim.raw')).equals(c.source));
    await warm.daemon.stop();
    warm = undefined;
    await seesPeer(c, cold);
    const before = c.proxy.blobBytes;
    const copy = copyOut(c, cold, 'cold2.raw');
    await waitFor(async () => (await metric(cold, /lazybd_peer_bytes_total\{direction="in"\} (\d+)/)) > 0, 15_000, 'bytes from the peer');
    victim.daemon.child.kill('SIGKILL');
    assert.ok((await copy).equals(c.source), 'device differs from the source');
    const fromRegistry = c.proxy.blobBytes - before;
    assert.ok(fromRegistry > 0 && fromRegistry < DATA + (1 << 20), `${fromRegistry} bytes from the registry`);
  } finally {
    await victim.daemon.stop();
    await cold.daemon.stop();
  }
});

p2p('--p2p without bootstrap nodes is a usage error; --no-p2p serves from the registry alone', async () => {
  if (!ctx) return;
  const r = await lazybd(['serve', ctx.remote, '--plain-http', '--p2p'], { LAZYBD_STORE: join(ctx.dir, 'usage') });
  assert.is(r.status, 2);
  assert.match(r.stderr, /--p2p-bootstrap.*E_USAGE/);
});

p2p.run();
