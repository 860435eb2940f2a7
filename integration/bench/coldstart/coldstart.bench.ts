// Cold-start benchmark (not a test): a 2 GiB image whose "start-up" reads a fixed trace of
// 6% of its contents, served four ways from one docker-registry on loopback:
//   (a) full pull (skopeo copy of every blob) + local serve
//   (b) lazybd lazy            (c) lazybd lazy with trace-first prefetch
//   (d) nbdkit curl on the raw image blob over HTTP Range (today's no-lazybd option), and with its cache filter
// For each: time until the trace is read, time to copy the whole device after that, registry
// bytes, and bytes fetched before the first NBD read completes.
// Run: npx tsc -p . && node dist/integration/bench/coldstart/coldstart.bench.js [dataMiB]
import { createHash, randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { mkdtemp, open, rm, stat } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { RegistryClient } from '../../../lib/registry/registry-client.js';
import { LAZYBD_BIN, lazybd } from '../../support/cli.js';
import { FaultProxy } from '../../support/fault-proxy.js';
import { nbdsh } from '../../nbd-fixture.js';
import { spawnOwned, waitFor, type Owned } from '../../support/processes.js';
import { startRegistry } from '../../support/registry-server.js';
import { seededRandom } from '../../support/seeded-random.js';

const run = promisify(execFile);
const SIZE = 2 * 2 ** 30;
const DATA_MIB = Number(process.argv[2] ?? 480);
const READ = 32 << 10;

const dir = await mkdtemp(join(tmpdir(), 'lazybd-coldstart-'));
const registry = await startRegistry();
const proxy = await FaultProxy.start(registry.host);
const owned: Owned[] = [];
try {
  console.log(`machine: ${cpus().length} CPUs, ${cpus()[0]?.model}, node ${process.version}`);
  // The image: DATA_MIB of random data in 1 MiB runs spread over 2 GiB.
  const raw = join(dir, 'disk.raw');
  const h = await open(raw, 'w');
  await h.truncate(SIZE);
  const runs: number[] = [];
  for (let i = 0; i < DATA_MIB; i++) {
    const at = Math.floor((i * 2039) % 2040) * (1 << 20);
    runs.push(at);
    await h.write(randomBytes(1 << 20), 0, 1 << 20, at);
  }
  await h.close();
  // The trace: 32 KiB reads inside the data, 6% of it, in a fixed pseudo-random order.
  const traceReads: [number, number][] = [];
  const rnd = seededRandom(12345);
  const traceBytes = Math.floor(DATA_MIB * (1 << 20) * 0.06);
  for (let done = 0; done < traceBytes; done += READ) traceReads.push([runs[rnd(runs.length)]! + rnd(32) * READ, READ]);
  console.log(`image: 2 GiB virtual, ${DATA_MIB} MiB data; trace: ${traceReads.length} reads of 32 KiB = ${(traceBytes / 2 ** 20).toFixed(1)} MiB (6% of the data)`);

  const origin = { LAZYBD_STORE: join(dir, 'origin') };
  await mustRun(lazybd(['create', raw, 'disk:v1'], origin));
  const remote = `${proxy.host}/bench/disk:v1`;
  await mustRun(lazybd(['push', 'disk:v1', remote, '--plain-http'], origin));

  // The raw image as a plain blob, for nbdkit curl.
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(raw)) hash.update(chunk as Buffer);
  const digest = `sha256:${hash.digest('hex')}`;
  const client = new RegistryClient({ registry: registry.host, plainHttp: true });
  await client.uploadBlob('bench/raw', { digest, size: SIZE }, () => createReadStream(raw));
  await client.close();

  const replay = async (uri: string) => {
    const t0 = performance.now();
    await nbdsh(`h.connect_uri(${JSON.stringify(uri)})\nfor off, n in ${JSON.stringify(traceReads)}:\n    h.pread(n, off)\n`);
    return performance.now() - t0;
  };
  const firstRead = async (uri: string) => nbdsh(`h.connect_uri(${JSON.stringify(uri)})\nh.pread(4096, ${traceReads[0]![0]})\n`);
  const copyAll = async (uri: string) => {
    const t0 = performance.now();
    await run('nbdcopy', [uri, join(dir, 'copy.raw')]);
    const ms = performance.now() - t0;
    await rm(join(dir, 'copy.raw'), { force: true });
    return ms;
  };
  const results: Record<string, string | number>[] = [];
  const measure = async (name: string, start: () => Promise<{ uri: string; stop: () => Promise<void>; setupMs?: number }>) => {
    proxy.blobBytes = 0;
    const t0 = performance.now();
    const s = await start();
    await firstRead(s.uri);
    const firstReadBytes = proxy.blobBytes;
    await replay(s.uri);
    const traceMs = performance.now() - t0;
    const traceBytesMoved = proxy.blobBytes;
    const copyMs = await copyAll(s.uri);
    await s.stop();
    results.push({ name, 'until trace read (s)': (traceMs / 1000).toFixed(2), 'whole copy after (s)': (copyMs / 1000).toFixed(2), 'registry MiB by trace end': (traceBytesMoved / 2 ** 20).toFixed(1), 'registry MiB total': (proxy.blobBytes / 2 ** 20).toFixed(1), 'KiB before 1st read': (firstReadBytes / 1024).toFixed(1) });
    console.log(JSON.stringify(results[results.length - 1]));
  };
  const serveLazybd = async (store: string, ref: string, extra: string[]) => {
    const sock = join(dir, `${store}.sock`);
    const d = spawnOwned(process.execPath, [LAZYBD_BIN, 'serve', ref, '--plain-http', '--socket', sock, ...extra], { env: { ...process.env, LAZYBD_STORE: join(dir, store), XDG_RUNTIME_DIR: dir } });
    owned.push(d);
    await waitFor(() => /at nbd\+unix:/.test(d.output()) || d.child.exitCode !== null, 60_000, 'serve');
    return { uri: /at (nbd\+unix:\S+)/.exec(d.output())![1]!, stop: () => d.stop() };
  };

  await measure('(a) full pull (skopeo) + local serve', async () => {
    await run('skopeo', ['copy', '--src-tls-verify=false', `docker://${remote}`, `oci:${join(dir, 'full')}:disk:v1`]);
    return serveLazybd('full', 'disk:v1', []);
  });
  await measure('(b) lazybd lazy', () => serveLazybd('lazy', remote, ['--prefetch-rate', '0']));

  // (c): record the trace once, attach it, push; then a fresh node starts with trace-first prefetch.
  const rec = await serveLazybd('rec', remote, ['--prefetch-rate', '0', '--record-trace', join(dir, 'trace.json')]);
  await replay(rec.uri);
  await rec.stop();
  await mustRun(lazybd(['trace', 'attach', 'disk:v1', join(dir, 'trace.json')], origin));
  const traced = `${proxy.host}/bench/disk:traced`;
  await mustRun(lazybd(['push', 'disk:v1', traced, '--plain-http'], origin));
  await measure('(c) lazybd lazy + trace prefetch', () => serveLazybd('traced', traced, ['--prefetch-rate', '100']));

  const nbdkit = async (filters: string[]) => {
    const sock = join(dir, `nbdkit-${filters.length}.sock`);
    const k = spawnOwned('nbdkit', ['--foreground', '--unix', sock, ...filters, 'curl', `url=http://${proxy.host}/v2/bench/raw/blobs/${digest}`]);
    owned.push(k);
    await waitFor(async () => (await stat(sock).catch(() => null)) !== null, 20_000, 'nbdkit');
    return { uri: `nbd+unix:///?socket=${sock}`, stop: () => k.stop() };
  };
  await measure('(d) nbdkit curl (raw blob, Range)', () => nbdkit([]));
  await measure('(d) nbdkit curl + cache filter', () => nbdkit(['--filter=cache']));
  console.table(results);
} finally {
  for (const o of owned) await o.stop();
  await proxy.stop();
  await registry.stop();
  await rm(dir, { recursive: true, force: true });
}

async function mustRun(p: Promise<{ status: number; stderr: string }>): Promise<void> {
  const r = await p;
  if (r.status !== 0) throw new Error(r.stderr);
}
