// Cold-start benchmark (not a test): a 2 GiB image whose "start-up" reads a fixed trace of
// 6% of its contents, served these ways from one docker-registry:
//   skopeo        (a) full pull (skopeo copy of every blob) + local serve
//   lazy          (b) lazybd lazy
//   trace         (c) lazybd lazy with trace-first prefetch
//   nbdkit        (d) nbdkit curl on the raw image blob over HTTP Range (today's no-lazybd option)
//   nbdkit-cache  (d) the same with its cache filter
// For each: time until the trace is read, time to copy the whole device after that, registry
// bytes, and bytes fetched before the first NBD read completes.
// Links (--links): `loopback` (the registry on 127.0.0.1, bandwidth free), or N (Mbit/s): the
// registry in a network namespace behind a veth shaped to N Mbit/s each way with --rtt-us
// added by a delay line (bench-registry.ts; needs root). One table per link, best of --rounds.
// Run: npx tsc -p . && node dist/integration/bench/coldstart/coldstart.bench.js [dataMiB]
//        [--links loopback,1000,200] [--rounds N] [--columns skopeo,lazy,trace,nbdkit,nbdkit-cache] [--rtt-us 500] [--json FILE]
import { createHash, randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { mkdir, open, rm, stat, writeFile } from 'node:fs/promises';
import { cpus, loadavg, release } from 'node:os';
import { join } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { RegistryClient } from '../../../lib/registry/registry-client.js';
import { LAZYBD_BIN, lazybd } from '../../support/cli.js';
import { nbdsh } from '../../nbd-fixture.js';
import { spawnOwned, waitFor, type Owned } from '../../support/processes.js';
import { seededRandom } from '../../support/seeded-random.js';
import { markdownTable } from '../../scale/report.js';
import { guardRun } from '../../scale/run-guard.js';
import { newRunName } from '../../scale/run-name.js';
import { removeRun, runDirectory, sweepLeftovers } from '../../scale/sweep.js';
import { loopbackRegistry, ShapedRegistry, type BenchRegistry } from './bench-registry.js';

const run = promisify(execFile);
const SIZE = 2 * 2 ** 30;
const READ = 32 << 10;
const STEP_TIMEOUT_MS = 900_000;

const COLUMNS = {
  skopeo: '(a) full pull (skopeo) + local serve',
  lazy: '(b) lazybd lazy',
  trace: '(c) lazybd lazy + trace prefetch',
  nbdkit: '(d) nbdkit curl (raw blob, Range)',
  'nbdkit-cache': '(d) nbdkit curl + cache filter',
} as const;
type Column = keyof typeof COLUMNS;

const { values: opts, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    links: { type: 'string', default: 'loopback' },
    rounds: { type: 'string', default: '1' },
    columns: { type: 'string', default: Object.keys(COLUMNS).join(',') },
    'rtt-us': { type: 'string', default: '500' },
    json: { type: 'string' },
    help: { type: 'boolean', default: false },
  },
});
if (opts.help) {
  console.log(`usage: node dist/integration/bench/coldstart/coldstart.bench.js [dataMiB (480)] [options]
  --links L[,L…]    loopback (registry on 127.0.0.1) or a rate in Mbit/s: the registry in a netns behind a shaped veth (root) (default loopback)
  --rounds N        rounds per link, columns alternating in each; the best of N is reported (default 1)
  --columns C[,C…]  ${Object.keys(COLUMNS).join(', ')} (default all)
  --rtt-us U        round-trip time the shaped links add (default 500)
  --json FILE       every round's figures and the best, as JSON`);
  process.exit(0);
}
const usage = (m: string): never => {
  console.error(`coldstart: ${m} (--help)`);
  process.exit(2);
};
const DATA_MIB = Number(positionals[0] ?? 480);
if (!(Number.isInteger(DATA_MIB) && DATA_MIB >= 16 && DATA_MIB <= 2000)) usage('dataMiB must be an integer in [16, 2000]');
const ROUNDS = Number(opts.rounds);
if (!(Number.isInteger(ROUNDS) && ROUNDS >= 1 && ROUNDS <= 20)) usage('--rounds must be an integer in [1, 20]');
const RTT_US = Number(opts['rtt-us']);
if (!(Number.isInteger(RTT_US) && RTT_US >= 0 && RTT_US <= 1_000_000)) usage('--rtt-us must be an integer in [0, 1000000]');
const links: (number | 'loopback')[] = String(opts.links).split(',').map((l) => {
  if (l === 'loopback') return l;
  const n = Number(l);
  return Number.isFinite(n) && n >= 1 && n <= 100_000 ? n : usage(`--links: ${l} is neither loopback nor a rate in Mbit/s`);
});
const columns = String(opts.columns).split(',').map((c) => (c in COLUMNS ? (c as Column) : usage(`unknown column ${c}`)));
const shaped = links.some((l) => l !== 'loopback');
if (shaped && process.getuid?.() !== 0) usage('shaped links make a network namespace: run as root');

interface Measurement {
  column: Column;
  round: number;
  traceMs: number;
  copyMs: number;
  traceBytes: number;
  totalBytes: number;
  firstReadBytes: number;
}
interface LinkCheck {
  /** Median time of a 64 KiB Range GET on a kept-alive connection. */
  get64kMs: number;
  /** Rate of one 64 MiB Range GET. */
  rateMbit: number;
}
interface LinkResult {
  link: string;
  description: string;
  counts: string;
  loadAverage: { start: number; end: number };
  check: LinkCheck;
  rounds: Measurement[];
  best: Measurement[];
}

const runName = newRunName();
const dir = runDirectory(runName);
const owned: Owned[] = [];
const registries: BenchRegistry[] = [];
const cleanUp = async () => {
  for (const o of owned) await o.stop();
  for (const r of registries) await r.stop().catch(() => undefined);
  if (shaped) await removeRun(runName);
  await rm(dir, { recursive: true, force: true });
};
const guard = guardRun(cleanUp, (why) => console.error(`[coldstart] ${why}: cleaning up ${runName}`));
const results: LinkResult[] = [];
try {
  if (shaped) {
    const swept = await sweepLeftovers();
    if (swept.runs.length) console.error(`[coldstart] removed leftovers of dead runs ${swept.runs.join(' ')}`);
  }
  await mkdir(dir, { recursive: true });
  const machine = `${cpus().length} CPUs, ${cpus()[0]?.model}, Linux ${release()}, node ${process.version}`;
  console.log(`machine: ${machine}; load average ${loadavg()[0]!.toFixed(1)}`);
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
  const imageLine = `image: 2 GiB virtual, ${DATA_MIB} MiB data; trace: ${traceReads.length} reads of 32 KiB = ${(traceBytes / 2 ** 20).toFixed(1)} MiB (6% of the data)`;
  console.log(imageLine);

  const origin = { LAZYBD_STORE: join(dir, 'origin') };
  await mustRun(lazybd(['create', raw, 'disk:v1'], origin, STEP_TIMEOUT_MS));
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(raw)) hash.update(chunk as Buffer);
  const digest = `sha256:${hash.digest('hex')}`;

  // One registry for the loopback link, one (re-shaped per link) for the others; both get the
  // image, the raw image as a plain blob (for nbdkit curl), and later the traced image. The
  // shaped one is filled before any shaping.
  const byLink = new Map<number | 'loopback', BenchRegistry>();
  let shapedRegistry: ShapedRegistry | undefined;
  if (links.includes('loopback')) {
    const r = await loopbackRegistry();
    registries.push(r);
    byLink.set('loopback', r);
  }
  if (shaped) {
    shapedRegistry = await ShapedRegistry.start(runName, join(dir, 'shaped'), RTT_US);
    registries.push(shapedRegistry);
    for (const l of links) if (l !== 'loopback') byLink.set(l, shapedRegistry);
  }
  for (const r of registries) {
    console.error(`[coldstart] pushing the image and the raw blob to ${r.host}`);
    await mustRun(lazybd(['push', 'disk:v1', `${r.host}/bench/disk:v1`, '--plain-http'], origin, STEP_TIMEOUT_MS));
    const client = new RegistryClient({ registry: r.host, plainHttp: true });
    await client.uploadBlob('bench/raw', { digest, size: SIZE }, () => createReadStream(raw));
    await client.close();
  }
  await rm(raw);

  const replay = async (uri: string) => {
    await nbdsh(`h.connect_uri(${JSON.stringify(uri)})\nfor off, n in ${JSON.stringify(traceReads)}:\n    h.pread(n, off)\n`);
  };
  const firstRead = async (uri: string) => nbdsh(`h.connect_uri(${JSON.stringify(uri)})\nh.pread(4096, ${traceReads[0]![0]})\n`);
  const copyAll = async (uri: string) => {
    const t0 = performance.now();
    await run('nbdcopy', [uri, join(dir, 'copy.raw')], { timeout: STEP_TIMEOUT_MS });
    const ms = performance.now() - t0;
    await rm(join(dir, 'copy.raw'), { force: true });
    return ms;
  };
  const serveLazybd = async (store: string, ref: string, extra: string[]) => {
    const sock = join(dir, `${store}.sock`);
    const d = spawnOwned(process.execPath, [LAZYBD_BIN, 'serve', ref, '--plain-http', '--socket', sock, ...extra], { env: { ...process.env, LAZYBD_STORE: join(dir, store), XDG_RUNTIME_DIR: dir } });
    owned.push(d);
    await waitFor(() => /at nbd\+unix:/.test(d.output()) || d.child.exitCode !== null, 60_000, 'serve');
    const uri = /at (nbd\+unix:\S+)/.exec(d.output())?.[1];
    if (!uri) throw new Error(`lazybd serve ${ref} did not start:\n${d.output()}`);
    return { uri, stop: () => d.stop() };
  };
  const nbdkit = async (r: BenchRegistry, filters: string[], tag: string) => {
    const sock = join(dir, `nbdkit-${tag}.sock`);
    const k = spawnOwned('nbdkit', ['--foreground', '--unix', sock, ...filters, 'curl', `url=http://${r.host}/v2/bench/raw/blobs/${digest}`]);
    owned.push(k);
    await waitFor(async () => (await stat(sock).catch(() => null)) !== null, 20_000, 'nbdkit');
    return { uri: `nbd+unix:///?socket=${sock}`, stop: () => k.stop() };
  };

  // (c) needs the trace: record it once (unshaped), attach it, push the traced image everywhere.
  {
    const r = registries[0]!;
    const rec = await serveLazybd('rec', `${r.host}/bench/disk:v1`, ['--prefetch-rate', '0', '--record-trace', join(dir, 'trace.json')]);
    await replay(rec.uri);
    await rec.stop();
    await rm(join(dir, 'rec'), { recursive: true, force: true });
    await mustRun(lazybd(['trace', 'attach', 'disk:v1', join(dir, 'trace.json')], origin));
    console.error(`[coldstart] trace recorded; pushing disk:traced`);
    for (const reg of registries) await mustRun(lazybd(['push', 'disk:v1', `${reg.host}/bench/disk:traced`, '--plain-http'], origin, STEP_TIMEOUT_MS));
  }

  const measure = async (r: BenchRegistry, column: Column, round: number, tag: string): Promise<Measurement> => {
    const store = `${column}-${tag}-${round}`;
    const start = async (): Promise<{ uri: string; stop: () => Promise<void> }> => {
      switch (column) {
        case 'skopeo':
          await run('skopeo', ['copy', '--src-tls-verify=false', `docker://${r.host}/bench/disk:v1`, `oci:${join(dir, store)}:disk:v1`], { timeout: STEP_TIMEOUT_MS });
          return serveLazybd(store, 'disk:v1', []); // the OCI layout skopeo wrote is the store
        case 'lazy':
          return serveLazybd(store, `${r.host}/bench/disk:v1`, ['--prefetch-rate', '0']);
        case 'trace':
          return serveLazybd(store, `${r.host}/bench/disk:traced`, ['--prefetch-rate', '100']);
        case 'nbdkit':
          return nbdkit(r, [], store);
        case 'nbdkit-cache':
          return nbdkit(r, ['--filter=cache'], store);
      }
    };
    const b0 = await r.sentBytes();
    const t0 = performance.now();
    const s = await start();
    await firstRead(s.uri);
    const firstReadBytes = (await r.sentBytes()) - b0;
    await replay(s.uri);
    const traceMs = performance.now() - t0;
    const traceBytesMoved = (await r.sentBytes()) - b0;
    const copyMs = await copyAll(s.uri);
    await s.stop();
    const totalBytes = (await r.sentBytes()) - b0;
    await rm(join(dir, store), { recursive: true, force: true });
    const m = { column, round, traceMs, copyMs, traceBytes: traceBytesMoved, totalBytes, firstReadBytes };
    console.error(`[coldstart] ${tag} round ${round} ${column}: trace ${(traceMs / 1000).toFixed(2)} s, copy ${(copyMs / 1000).toFixed(2)} s, ${mib(traceBytesMoved)}/${mib(totalBytes)} MiB`);
    return m;
  };

  for (const link of links) {
    const r = byLink.get(link)!;
    const tag = link === 'loopback' ? 'loopback' : `${link}mbit`;
    if (link !== 'loopback') await shapedRegistry!.shape(link);
    const description = link === 'loopback' ? `loopback: docker-registry on 127.0.0.1 behind the counting FaultProxy` : `${link} Mbit/s: ${shapedRegistry!.description}`;
    const loadStart = loadavg()[0]!;
    const check = await checkLink(r, digest);
    console.error(`[coldstart] ${tag}: 64 KiB GET ${check.get64kMs.toFixed(2)} ms, 64 MiB GET at ${check.rateMbit.toFixed(0)} Mbit/s`);
    const rounds: Measurement[] = [];
    // Rounds alternate the columns: forward on odd rounds, backward on even ones.
    for (let round = 1; round <= ROUNDS; round++) {
      for (const column of round % 2 ? columns : [...columns].reverse()) rounds.push(await measure(r, column, round, tag));
    }
    const best = columns.map((column) => {
      const mine = rounds.filter((m) => m.column === column);
      const fastest = mine.reduce((a, b) => (b.traceMs < a.traceMs ? b : a));
      return { ...fastest, copyMs: Math.min(...mine.map((m) => m.copyMs)) };
    });
    const result: LinkResult = { link: String(link), description, counts: r.counts, loadAverage: { start: loadStart, end: loadavg()[0]! }, check, rounds, best };
    results.push(result);
    console.log(`\n${formatLink(result)}`);
  }
  if (opts.json) await writeFile(opts.json, JSON.stringify({ machine, image: imageLine, dataMiB: DATA_MIB, rounds: ROUNDS, rttUs: RTT_US, links: results }, null, 2));
  if (results.length > 1) console.log(`\nall links:\n${results.map(formatLink).join('\n\n')}`);
} catch (e) {
  if (guard.abortStatus === undefined) throw e; // else a signal stopped the run: its status, not this error
} finally {
  await guard.finish();
}
process.exit(guard.abortStatus ?? 0);

/** 64 KiB Range GETs on one kept-alive connection (median of 20) and one 64 MiB Range GET, both of the raw blob with curl. */
async function checkLink(r: BenchRegistry, digest: string): Promise<LinkCheck> {
  const url = `http://${r.host}/v2/bench/raw/blobs/${digest}`;
  const n = 21;
  const small = await run('curl', ['-sf', '--max-time', '60', '-r', '0-65535', '-w', '%{time_total}\n', ...Array.from({ length: n }, () => ['-o', '/dev/null', url]).flat()], { timeout: 90_000 });
  // The first transfer opens the connection; the rest reuse it.
  const times = small.stdout.trim().split('\n').slice(1).map(Number).sort((a, b) => a - b);
  const big = await run('curl', ['-sf', '--max-time', '120', '-r', `0-${(64 << 20) - 1}`, '-o', '/dev/null', '-w', '%{speed_download}', url], { timeout: 150_000 });
  return { get64kMs: times[times.length >> 1]! * 1000, rateMbit: (Number(big.stdout) * 8) / 1e6 };
}

function formatLink(r: LinkResult): string {
  const byColumn = new Map(r.best.map((m) => [m.column, m]));
  const ratio = (m: Measurement, anchor: Column) => {
    const a = byColumn.get(anchor);
    return a ? (m.traceMs / a.traceMs).toFixed(2) : '-';
  };
  const rows = r.best.map((m) => [COLUMNS[m.column], (m.traceMs / 1000).toFixed(2), ratio(m, 'nbdkit'), ratio(m, 'skopeo'), (m.copyMs / 1000).toFixed(2), mib(m.traceBytes), mib(m.totalBytes), (m.firstReadBytes / 1024).toFixed(1)]);
  const rounds = new Set(r.rounds.map((m) => m.round)).size;
  return [
    `link ${r.description}`,
    `  check: 64 KiB Range GET ${r.check.get64kMs.toFixed(2)} ms (median of 20, one connection); 64 MiB Range GET at ${r.check.rateMbit.toFixed(0)} Mbit/s; load average ${r.loadAverage.start.toFixed(1)} at the start, ${r.loadAverage.end.toFixed(1)} at the end`,
    `  best of ${rounds} round(s) (lowest trace time; whole copy: lowest); registry bytes: ${r.counts}`,
    ...markdownTable(['', 'until trace read (s)', '× nbdkit', '× skopeo', 'whole copy after (s)', 'registry MiB by trace end', 'registry MiB total', 'KiB before 1st read'], rows),
  ].join('\n');
}

function mib(b: number): string {
  return (b / 2 ** 20).toFixed(1);
}

async function mustRun(p: Promise<{ status: number; stderr: string }>): Promise<void> {
  const t0 = performance.now();
  const r = await p;
  if (r.status !== 0) throw new Error(`${r.stderr.trim()} (after ${((performance.now() - t0) / 1000).toFixed(1)} s)`);
}
