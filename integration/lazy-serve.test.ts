import { randomInt } from 'node:crypto';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { chunkTables } from './support/chunk-tables.js';
import { LAZYBD_BIN, lazybd } from './support/cli.js';
import { FaultProxy } from './support/fault-proxy.js';
import { expectBytes, nbdRead } from './support/nbd-client.js';
import { spawnOwned, waitFor, type Owned } from './support/processes.js';
import { startRegistry, type RegistryServer } from './support/registry-server.js';
import { pushRunsImage } from './support/runs-image.js';
import { requireTools } from './support/tools.js';

const run = promisify(execFile);
const SIZE = 64 << 20;
const EIO = 'EIO';

interface Ctx {
  dir: string;
  registry: RegistryServer;
  proxy: FaultProxy;
  source: Buffer;
  /** Where each of the eight 1 MiB data runs starts. */
  runs: number[];
  remote: string;
}

/** 64 MiB device with 8 MiB of random data in runs, pushed through the proxy. */
async function setup(dir: string): Promise<Ctx> {
  const registry = await startRegistry();
  const proxy = await FaultProxy.start(registry.host);
  const remote = `${proxy.host}/lazy/disk:v1`;
  const { source, runs } = await pushRunsImage(dir, remote, { size: SIZE, count: 8, runLength: 1 << 20 });
  return { dir, registry, proxy, source, runs, remote };
}

async function serve(c: Ctx, store: string, extra: string[] = []): Promise<{ daemon: Owned; uri: string }> {
  const sock = join(c.dir, `${store}.sock`);
  const daemon = spawnOwned(process.execPath, [LAZYBD_BIN, 'serve', c.remote, '--plain-http', '--socket', sock, '--io-timeout', '3', ...extra], {
    env: { ...process.env, LAZYBD_STORE: join(c.dir, store), XDG_RUNTIME_DIR: c.dir },
  });
  await waitFor(() => /at nbd\+unix:/.test(daemon.output()) || daemon.child.exitCode !== null, 20_000, 'serve to start');
  assert.ok(daemon.child.exitCode === null, `serve exited: ${daemon.output()}`);
  const uri = /at (nbd\+unix:\S+)/.exec(daemon.output())![1]!;
  return { daemon, uri };
}

/** Random 64 KiB reads, each inside a data run. */
function someReads(c: Ctx, n: number): [number, number][] {
  return Array.from({ length: n }, (_, i) => [c.runs[i % 8]! + randomInt(0, 15) * 65536, 65536] as [number, number]);
}

/** A range inside data run `i`, so reading it needs the network. */
function inRun(c: Ctx, i: number, length: number): [number, number] {
  return [c.runs[i]! + 8192, length];
}

function bytesOf(c: Ctx, [off, len]: [number, number]): Buffer {
  return c.source.subarray(off, off + len);
}

const lazy = suite('lazy serve');
let ctx: Ctx | undefined;

lazy.before(async () => {
  if (!(await requireTools('docker-registry', 'nbdsh', 'nbdcopy'))) return;
  ctx = await setup(await mkdtemp(join(tmpdir(), 'lazybd-lazy-')));
});

lazy.after(async () => {
  if (!ctx) return;
  const c = ctx;
  await c.proxy.stop();
  await c.registry.stop();
  await rm(c.dir, { recursive: true, force: true });
});

lazy('a lazily served image copies out byte-identical; only data chunks cross the network', async () => {
  if (!ctx) return;
  const c = ctx;
  c.proxy.mode = 'pass';
  c.proxy.blobBytes = 0;
  const { daemon, uri } = await serve(c, 'copy', ['--prefetch-rate', '0', '--metrics', '127.0.0.1:0']);
  try {
    const out = join(c.dir, 'copy.raw');
    await run('nbdcopy', [uri, out]);
    assert.ok((await readFile(out)).equals(c.source), 'device differs from the source');
    assert.ok(c.proxy.blobBytes <= (8 << 20) + 2 * 65536 * 8 + 64 * 1024, `moved ${c.proxy.blobBytes} bytes for 8 MiB of data`);
    // The Prometheus endpoint counts what just happened: NBD reads, registry bytes, cache misses.
    const metricsUrl = /metrics at (http:\S+)/.exec(daemon.output())![1]!;
    const metrics = await (await fetch(metricsUrl)).text();
    const value = (re: RegExp) => Number(re.exec(metrics)?.[1] ?? 0);
    assert.ok(value(/lazybd_nbd_requests_total\{command="read",outcome="ok"\} (\d+)/) > 0, 'NBD reads counted');
    assert.ok(value(/lazybd_source_bytes_total\{source="registry"\} (\d+)/) >= 8 << 20, 'registry bytes counted');
    assert.ok(value(/lazybd_chunk_cache_misses_total (\d+)/) > 0, 'cache misses counted');
  } finally {
    await daemon.stop();
  }
});

lazy('reading ~4% of the device moves at most what was read, the metadata and one chunk per read', async () => {
  if (!ctx) return;
  const c = ctx;
  c.proxy.mode = 'pass';
  const before = c.proxy.blobBytes;
  const { daemon, uri } = await serve(c, 'partial', ['--prefetch-rate', '0']);
  try {
    const reads = someReads(c, 40);
    const got = await nbdRead(uri, reads);
    got.forEach((r, i) => {
      const [off, len] = reads[i]!;
      assert.equal(r, expectBytes(c.source.subarray(off, off + len)), `read ${i}`);
    });
    const moved = c.proxy.blobBytes - before;
    const budget = 40 * 65536 + 16 * 1024 + 40 * 65536;
    assert.ok(moved <= budget, `moved ${moved} bytes, budget ${budget}`);
    assert.ok(moved < SIZE * 0.05 + 40 * 65536, 'within 5% of the device plus a chunk per read');
  } finally {
    await daemon.stop();
  }
});

lazy('a registry that flips bits: the client gets EIO, never bad bytes; reads recover when it is honest again', async () => {
  if (!ctx) return;
  const c = ctx;
  const { daemon, uri } = await serve(c, 'corrupt', ['--prefetch-rate', '0']);
  try {
    c.proxy.mode = 'corrupt';
    const range = inRun(c, 0, 65536);
    const [bad] = await nbdRead(uri, [range]);
    assert.equal(bad, { errno: EIO });
    assert.match(daemon.output(), /digest|verif/i);
    c.proxy.mode = 'pass';
    const [good] = await nbdRead(uri, [range]);
    assert.equal(good, expectBytes(bytesOf(c, range)));
  } finally {
    c.proxy.mode = 'pass';
    await daemon.stop();
  }
});

lazy('registry gone mid-run: reads fail with EIO within --io-timeout, the daemon survives and resumes', async () => {
  if (!ctx) return;
  const c = ctx;
  c.proxy.mode = 'pass';
  const { daemon, uri } = await serve(c, 'outage', ['--prefetch-rate', '0']);
  try {
    const early = inRun(c, 1, 4096);
    const late = inRun(c, 2, 4096);
    const [first] = await nbdRead(uri, [early]);
    assert.equal(first, expectBytes(bytesOf(c, early)));
    c.proxy.mode = 'down';
    c.proxy.dropConnections();
    const t0 = Date.now();
    const [down] = await nbdRead(uri, [late]);
    assert.equal(down, { errno: EIO });
    assert.ok(Date.now() - t0 < 10_000, `EIO took ${Date.now() - t0} ms`);
    const [cached] = await nbdRead(uri, [early]);
    assert.equal(cached, expectBytes(bytesOf(c, early)), 'cached data still served');
    c.proxy.mode = 'pass';
    const [back] = await nbdRead(uri, [late]);
    assert.equal(back, expectBytes(bytesOf(c, late)));
    assert.is(daemon.child.exitCode, null);
  } finally {
    c.proxy.mode = 'pass';
    await daemon.stop();
  }
});

lazy('after prefetch completes the registry can vanish; a restart with it gone serves from store and cache', async () => {
  if (!ctx) return;
  const c = ctx;
  c.proxy.mode = 'pass';
  let { daemon, uri } = await serve(c, 'prefetch', ['--prefetch-rate', '500']);
  try {
    await waitFor(
      async () => {
        const { stdout } = await lazybd(['status', '--json'], { XDG_RUNTIME_DIR: c.dir });
        const mine = (JSON.parse(stdout) as { pid: number; exports: { bytesLocal: number; bytesTotal: number }[] }[]).find((d) => d.pid === daemon.child.pid);
        return mine !== undefined && mine.exports[0]!.bytesLocal === mine.exports[0]!.bytesTotal;
      },
      30_000,
      'prefetch to complete',
    );
    c.proxy.mode = 'down';
    c.proxy.dropConnections();
    await run('nbdcopy', [uri, join(c.dir, 'after.raw')]);
    assert.ok((await readFile(join(c.dir, 'after.raw'))).equals(c.source));
    await daemon.stop();
    ({ daemon, uri } = await serve(c, 'prefetch', ['--prefetch-rate', '0']));
    assert.match(daemon.output(), /serving .* from the local store and cache/);
    await run('nbdcopy', [uri, join(c.dir, 'restart.raw')]);
    assert.ok((await readFile(join(c.dir, 'restart.raw'))).equals(c.source));
  } finally {
    c.proxy.mode = 'pass';
    await daemon.stop();
  }
});

lazy('a recorded trace, attached and pushed, is prefetched first by the next start', async () => {
  if (!ctx) return;
  const c = ctx;
  c.proxy.mode = 'pass';
  const traceFile = join(c.dir, 'trace.json');
  const first = await serve(c, 'trace-rec', ['--prefetch-rate', '0', '--record-trace', traceFile]);
  const reads = [inRun(c, 5, 65536), inRun(c, 0, 4096), inRun(c, 3, 131072)];
  try {
    await nbdRead(first.uri, reads);
  } finally {
    await first.daemon.stop();
  }
  const trace = JSON.parse(await readFile(traceFile, 'utf8')) as { entries: [number, number][] };
  assert.ok(trace.entries.length >= 4, `trace has ${trace.entries.length} entries`);
  const env = { LAZYBD_STORE: join(c.dir, 'origin') };
  const attach = await lazybd(['trace', 'attach', 'disk:v1', traceFile, '--json'], env);
  assert.is(attach.status, 0, attach.stderr);
  const traced = `${c.proxy.host}/lazy/disk:traced`;
  assert.is((await lazybd(['push', 'disk:v1', traced, '--plain-http'], env)).status, 0);
  // Fresh store: prefetch at a crawl, so after a moment only the trace's chunks can be local.
  const sock = join(c.dir, 'trace-run.sock');
  const daemon = spawnOwned(process.execPath, [LAZYBD_BIN, 'serve', traced, '--plain-http', '--socket', sock, '--prefetch-rate', '0.5'], {
    env: { ...process.env, LAZYBD_STORE: join(c.dir, 'trace-run'), XDG_RUNTIME_DIR: c.dir },
  });
  try {
    await waitFor(() => /at nbd\+unix:/.test(daemon.output()), 20_000, 'serve');
    const cacheFiles = async () => (await Promise.all((await readdir(join(c.dir, 'trace-run', 'chunk-cache', 'chunks')).catch(() => [])).map((d) => readdir(join(c.dir, 'trace-run', 'chunk-cache', 'chunks', d))))).flat();
    await waitFor(async () => (await cacheFiles()).length >= trace.entries.length, 15_000, 'trace chunks to arrive');
    const tables = await chunkTables(join(c.dir, 'origin'), 'disk:v1');
    const expected = new Set(trace.entries.map(([layer, chunk]) => tables[layer]!.digest(chunk).toString('hex')));
    const cached = new Set(await cacheFiles());
    for (const hex of expected) assert.ok(cached.has(hex), `trace chunk ${hex.slice(0, 12)} not prefetched first`);
  } finally {
    await daemon.stop();
  }
});

lazy.run();
