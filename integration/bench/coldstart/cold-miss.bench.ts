// Cold misses, apart from start-up: a fresh `lazybd serve` of a registry image replays a QD1 trace
// of 32 KiB reads, and so does `nbdkit curl` on the raw blob, against one docker-registry on
// loopback; reported: time until the server is ready, the trace time after that, per read, and
// registry MiB. Several lazybd builds can run in the same rounds (A/B of a change):
//   node dist/integration/bench/coldstart/cold-miss.bench.js [--rounds N] [--data-mib M] [--chunk-size B] [name=path/to/lazybd.js ...]
// Without builds it measures this checkout's. Rounds alternate the servers; best of the rounds.
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, open, rm, stat } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { RegistryClient } from '../../../lib/registry/registry-client.js';
import { LAZYBD_BIN } from '../../support/cli.js';
import { nbdsh } from '../../nbd-fixture.js';
import { spawnOwned, waitFor, type Owned } from '../../support/processes.js';
import { seededRandom } from '../../support/seeded-random.js';
import { loopbackRegistry } from './bench-registry.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { rounds: { type: 'string', default: '3' }, 'data-mib': { type: 'string', default: '160' }, 'chunk-size': { type: 'string' } },
});
const ROUNDS = Number(values.rounds);
const DATA_MIB = Number(values['data-mib']);
const builds = positionals.length > 0 ? positionals.map((a) => a.split('=') as [string, string]) : [['lazybd', LAZYBD_BIN] as [string, string]];
const SIZE = 2 ** 31;
const READ = 32 << 10;

const dir = await mkdtemp(join(tmpdir(), 'lazybd-coldmiss-'));
const registry = await loopbackRegistry();
const owned: Owned[] = [];
try {
  console.log(`machine: ${cpus().length} CPUs, ${cpus()[0]?.model}, node ${process.version}, load ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);
  const raw = join(dir, 'disk.raw');
  const h = await open(raw, 'w');
  await h.truncate(SIZE);
  const runs: number[] = [];
  for (let i = 0; i < DATA_MIB; i++) {
    const at = ((i * 2039) % 2040) * 2 ** 20;
    runs.push(at);
    await h.write(randomBytes(2 ** 20), 0, 2 ** 20, at);
  }
  await h.close();
  const rnd = seededRandom(12345);
  const trace: [number, number][] = [];
  for (let done = 0; done < DATA_MIB * 2 ** 20 * 0.06; done += READ) trace.push([runs[rnd(runs.length)]! + rnd(32) * READ, READ]);

  const [, firstBin] = builds[0]!;
  const origin = { ...process.env, LAZYBD_STORE: join(dir, 'origin') };
  const chunkSize = values['chunk-size'] ? ['--chunk-size', values['chunk-size']] : [];
  await mustRun(firstBin, ['create', raw, 'disk:v1', ...chunkSize], origin);
  const remote = `${registry.host}/bench/disk:v1`;
  await mustRun(firstBin, ['push', 'disk:v1', remote, '--plain-http'], origin);
  const hash = createHash('sha256');
  for await (const c of createReadStream(raw)) hash.update(c as Buffer);
  const digest = `sha256:${hash.digest('hex')}`;
  const client = new RegistryClient({ registry: registry.host, plainHttp: true });
  await client.uploadBlob('bench/raw', { digest, size: SIZE }, () => createReadStream(raw));
  await client.close();
  console.log(`image: 2 GiB virtual, ${DATA_MIB} MiB data${values['chunk-size'] ? `, chunk size ${values['chunk-size']}` : ''}; trace: ${trace.length} QD1 reads of 32 KiB; best of ${ROUNDS}`);

  const script = (uri: string) => `h.connect_uri(${JSON.stringify(uri)})\nfor off, n in ${JSON.stringify(trace)}:\n    h.pread(n, off)\n`;
  const best = new Map<string, { total: number; ready: number; trace: number; mib: number }>();
  let k = 0;
  const measure = async (name: string, start: () => Promise<{ uri: string; stop: () => Promise<void> }>) => {
    const before = await registry.sentBytes();
    const t0 = performance.now();
    const s = await start();
    const ready = performance.now() - t0;
    await nbdsh(script(s.uri));
    const total = performance.now() - t0;
    await s.stop();
    const r = { total, ready, trace: total - ready, mib: ((await registry.sentBytes()) - before) / 2 ** 20 };
    console.log(JSON.stringify({ name, ...r }));
    const b = best.get(name);
    if (!b || r.trace < b.trace) best.set(name, { ...r, total: Math.min(r.total, b?.total ?? Infinity) });
  };
  const lazybd = (bin: string) => async () => {
    const sock = join(dir, `s${++k}.sock`);
    const d = spawnOwned(process.execPath, [bin, 'serve', remote, '--plain-http', '--prefetch-rate', '0', '--socket', sock], { env: { ...process.env, LAZYBD_STORE: join(dir, `store${k}`), XDG_RUNTIME_DIR: dir } });
    owned.push(d);
    await waitFor(() => /at nbd\+unix:/.test(d.output()) || d.child.exitCode !== null, 60_000, 'serve');
    return { uri: /at (nbd\+unix:\S+)/.exec(d.output())![1]!, stop: () => d.stop() };
  };
  const nbdkit = async () => {
    const sock = join(dir, `k${++k}.sock`);
    const p = spawnOwned('nbdkit', ['--foreground', '--unix', sock, 'curl', `url=http://${registry.host}/v2/bench/raw/blobs/${digest}`]);
    owned.push(p);
    await waitFor(async () => (await stat(sock).catch(() => null)) !== null, 20_000, 'nbdkit');
    return { uri: `nbd+unix:///?socket=${sock}`, stop: () => p.stop() };
  };
  const servers: [string, () => Promise<{ uri: string; stop: () => Promise<void> }>][] = [...builds.map(([n, b]): [string, ReturnType<typeof lazybd>] => [n, lazybd(b)]), ['nbdkit curl', nbdkit]];
  for (let r = 0; r < ROUNDS; r++) for (const [name, start] of r % 2 ? [...servers].reverse() : servers) await measure(name, start);

  const anchor = best.get('nbdkit curl')!;
  console.log('\n| server | until trace read (s) | ready (s) | trace after ready (s) | ms a read | trace × nbdkit | registry MiB |\n|---|---|---|---|---|---|---|');
  for (const [name, b] of best) {
    console.log(`| ${name} | ${(b.total / 1000).toFixed(2)} | ${(b.ready / 1000).toFixed(2)} | ${(b.trace / 1000).toFixed(2)} | ${(b.trace / trace.length).toFixed(2)} | ${(b.trace / anchor.trace).toFixed(2)} | ${b.mib.toFixed(1)} |`);
  }
} finally {
  for (const o of owned) await o.stop();
  await registry.stop();
  await rm(dir, { recursive: true, force: true });
}

async function mustRun(bin: string, args: string[], env: NodeJS.ProcessEnv): Promise<void> {
  const p = spawnOwned(process.execPath, [bin, ...args], { env });
  const code = await new Promise<number | null>((resolve) => p.child.once('exit', resolve));
  if (code !== 0) throw new Error(`lazybd ${args.join(' ')} failed: ${p.output()}`);
}
