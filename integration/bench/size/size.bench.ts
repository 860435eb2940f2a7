// Size benchmark (issue 13; not a test): one real file system image, a debootstrap Debian 12
// minbase rootfs in ext4 (what integration/vm/build-boot-image.sh makes: 2 GiB sparse raw, cached
// between runs), stored every way side by side:
//   raw allocated bytes (du, SEEK_DATA), lazybd layer blobs (`create --compress none|lz4|zstd` when the
//   lazybd under test has the flag, else only the default), `qemu-img convert -c -O qcow2` (zlib, zstd),
//   the rootfs tree as an OCI-style tar layer (gzip -6, zstd -3);
// then for every lazybd variant: warm NBD read speed (fio, nbd engine, unix socket, best of N, against
// qemu-nbd on the raw and on the qcow2+zstd in the same rounds), and the registry bytes and time of a
// cold lazy read of the whole device (docker-registry on loopback, bytes counted by a proxy).
//
// Run (root: loop mount of the ext4 image, and debootstrap on the first run):
//   npx tsc -p . && node dist/integration/bench/size/size.bench.js [options]
//     --cache DIR     built images live here ($LAZYBD_SIZE_CACHE, else $LAZYBD_VM_CACHE, else
//                     /var/cache/lazybd-test/vm: the VM tests' cache, same key, so one build serves both)
//     --mirror URL    Debian mirror for the first build ($LAZYBD_VM_MIRROR, else deb.debian.org)
//     --lazybd PATH   the lazybd under test: a lazybd.js (run with this node) or an executable
//                     (default: this tree's dist/bin/lazybd.js)
//     --codecs LIST   the --compress values to make layers with (default none,lz4,zstd; zstd:9 etc. if supported),
//                     each optionally @CHUNK_SIZE (zstd:19@262144) for a chunk size other than 64 KiB
//     --seconds S     fio seconds per job (default 3)    --rounds N   fio rounds, best kept (default 3)
//     --json FILE     also write every figure as JSON
// Every child runs owned (killed if the bench dies); the loop mount, temp dir and registry go away on
// every exit, SIGINT/SIGTERM/SIGHUP included.
import { execFileSync, type SpawnOptions } from 'node:child_process';
import { once } from 'node:events';
import { openSync, closeSync, existsSync, readdirSync } from 'node:fs';
import { mkdtemp, mkdir, open, readFile, stat, writeFile } from 'node:fs/promises';
import { cpus, tmpdir, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { dataRegions } from '../../../lib/store/native-io.js';
import { FaultProxy } from '../../support/fault-proxy.js';
import { cpuSeconds } from '../../support/proc-stat.js';
import { spawnOwned, waitFor, type Owned } from '../../support/processes.js';

const MiB = 2 ** 20;
// dist/integration/bench/size/ -> the repository root (build-boot-image.sh is found from there).
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..');
process.chdir(ROOT);

const opts = parseArgs(process.argv.slice(2));
const CACHE = resolve(opts.cache ?? process.env.LAZYBD_SIZE_CACHE ?? process.env.LAZYBD_VM_CACHE ?? '/var/cache/lazybd-test/vm');
const SECONDS = Number(opts.seconds ?? 3);
const ROUNDS = Number(opts.rounds ?? 3);
const LAZYBD = resolve(opts.lazybd ?? join(ROOT, 'dist', 'bin', 'lazybd.js'));
const lazybdCmd = (args: string[]): [string, string[]] => (LAZYBD.endsWith('.js') ? [process.execPath, [LAZYBD, ...args]] : [LAZYBD, args]);

// ---- cleanup, on every exit -------------------------------------------------------------------
const work = await mkdtemp(join(tmpdir(), 'lazybd-size-'));
// Everything temporary (the registry's storage too: it makes its dir in os.tmpdir()) lives under `work`.
process.env.TMPDIR = work;
const mounts: string[] = [];
let buildGroup: { pid: number; out: string } | undefined;
let cleaned = false;
function cleanupSync(): void {
  if (cleaned) return;
  cleaned = true;
  if (buildGroup) {
    // The whole builder (bash, debootstrap, chroot): then what it left, as its next run would sweep it.
    try { process.kill(-buildGroup.pid, 'SIGKILL'); } catch { /* gone */ }
    const parent = dirname(buildGroup.out);
    for (const name of existsSync(parent) ? readdirSync(parent) : []) {
      if (!name.startsWith(`${buildGroup.out.slice(parent.length + 1)}.tmp-`)) continue;
      const tmp = join(parent, name);
      for (const m of ['proc', 'sys', 'dev/pts']) quiet('umount', ['-l', join(tmp, 'root', m)]);
      quiet('rm', ['-rf', '--one-file-system', tmp]);
    }
  }
  for (const m of mounts.reverse()) {
    // Readers killed a moment ago may still hold it: retry, then detach lazily (the loop device is
    // autoclear, so it goes with the last user either way).
    let ok = false;
    for (let i = 0; i < 20 && !ok; i++) {
      ok = quiet('umount', [m]);
      if (!ok) quiet('sleep', ['0.1']);
    }
    if (!ok) quiet('umount', ['-l', m]);
  }
  quiet('rm', ['-rf', '--one-file-system', work]);
}
function quiet(cmd: string, args: string[]): boolean {
  try {
    execFileSync(cmd, args, { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
// processes.ts kills the owned children on these signals (its handler runs first); this one
// then unmounts and removes, and exits with the signal's status.
for (const [signal, n] of [['SIGINT', 2], ['SIGTERM', 15], ['SIGHUP', 1]] as const) {
  process.on(signal, () => {
    console.error(`\nsize bench: ${signal}, cleaning up`);
    cleanupSync();
    process.exit(128 + n);
  });
}
process.on('exit', cleanupSync);

// ---- helpers ----------------------------------------------------------------------------------
interface RunResult { out: string; ms: number }
/** Runs a command owned (killed with the bench); stdout to `stdoutTo` if given. Throws on failure. */
async function sh(cmd: string, args: string[], o: { stdoutTo?: string; env?: NodeJS.ProcessEnv; allowFail?: boolean } = {}): Promise<RunResult & { status: number }> {
  const fd = o.stdoutTo ? openSync(o.stdoutTo, 'w') : undefined;
  const options: SpawnOptions = { env: { ...process.env, ...o.env }, stdio: ['ignore', fd ?? 'pipe', 'pipe'] };
  const t0 = performance.now();
  const p = spawnOwned(cmd, args, options);
  const [code, signal] = (await once(p.child, 'exit').catch(() => [1, null])) as [number | null, string | null];
  if (fd !== undefined) closeSync(fd);
  const ms = performance.now() - t0;
  const status = code ?? 128;
  if (status !== 0 && !o.allowFail) throw new Error(`${cmd} ${args.join(' ')}: exit ${code ?? signal}\n${p.output().slice(-4000)}`);
  return { out: p.output(), ms, status };
}
const lz = (args: string[], env: NodeJS.ProcessEnv, allowFail = false) => {
  const [c, a] = lazybdCmd(args);
  return sh(c, a, { env, allowFail });
};
const mib = (b: number) => (b / MiB).toFixed(1);
const bytesOf = async (f: string) => (await stat(f)).size;
const allocatedOf = async (f: string) => (await stat(f)).blocks * 512;

const owned: Owned[] = [];
async function serve(name: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ uri: string; pid: number; stop: () => Promise<void> }> {
  const sock = join(work, `${name.replace(/[^A-Za-z0-9_.-]/g, '-')}.sock`);
  const [c, a] = lazybdCmd(['serve', ...args, '--socket', sock, '--read-only', '--prefetch-rate', '0', '--no-p2p']);
  const d = spawnOwned(c, a, { env: { ...process.env, XDG_RUNTIME_DIR: join(work, 'run'), ...env } });
  owned.push(d);
  await waitFor(() => /at nbd\+unix:/.test(d.output()) || d.child.exitCode !== null, 120_000, `lazybd serve ${name}`);
  const m = /at (nbd\+unix:\S+)/.exec(d.output());
  if (!m) throw new Error(`lazybd serve ${name} failed:\n${d.output()}`);
  return { uri: m[1]!, pid: d.child.pid!, stop: () => d.stop() };
}
async function qemuNbd(name: string, file: string, format: string): Promise<{ uri: string; pid: number; stop: () => Promise<void> }> {
  const sock = join(work, `${name}.sock`);
  const q = spawnOwned('qemu-nbd', ['--read-only', '--persistent', '--shared=16', `--format=${format}`, '--cache=writeback', '--aio=threads', `--socket=${sock}`, file]);
  owned.push(q);
  await waitFor(async () => (await stat(sock).catch(() => null)) !== null || q.child.exitCode !== null, 20_000, `qemu-nbd ${name}`);
  if (q.child.exitCode !== null) throw new Error(`qemu-nbd ${name}: ${q.output()}`);
  return { uri: `nbd+unix:///?socket=${sock}`, pid: q.child.pid!, stop: () => q.stop() };
}

// ---- 1. the image -----------------------------------------------------------------------------
const t0 = performance.now();
const machine = `${cpus().length} CPUs, ${cpus()[0]?.model}, ${Math.round(totalmem() / 2 ** 30)} GiB RAM, node ${process.version}, load ${(await readFile('/proc/loadavg', 'utf8')).split(' ').slice(0, 3).join(' ')}`;
console.log(`machine: ${machine}`);
// Each tool and the Debian package that brings it (integration/setup/install-deps.sh has all but zstd).
const NEEDED: Record<string, string> = { 'qemu-img': 'qemu-utils', 'qemu-nbd': 'qemu-utils', fio: 'fio', nbdcopy: 'libnbd-bin', gzip: 'gzip', zstd: 'zstd', tar: 'tar', cmp: 'diffutils', mount: 'mount', 'docker-registry': 'docker-registry', debootstrap: 'debootstrap', 'mkfs.ext4': 'e2fsprogs' };
const missing = Object.keys(NEEDED).filter((t) => !quiet('sh', ['-c', `command -v ${t}`]));
if (missing.length) {
  console.error(`size bench: missing ${missing.join(', ')}: apt-get install ${[...new Set(missing.map((t) => NEEDED[t]))].join(' ')}`);
  process.exit(2);
}
if (process.getuid?.() !== 0) {
  console.error('size bench: needs root (loop mount of the ext4 image; debootstrap when building it)');
  process.exit(2);
}
const lazybdVersion = (await lz(['--version'], {})).out.trim().replace(/\n/g, '; ');
console.log(`lazybd under test: ${LAZYBD} (${lazybdVersion})`);
const tools = {
  qemuImg: (await sh('qemu-img', ['--version'])).out.split('\n')[0]!,
  fio: (await sh('fio', ['--version'])).out.trim(),
  zstd: (await sh('zstd', ['--version'])).out.trim(),
  gzip: (await sh('gzip', ['--version'])).out.split('\n')[0]!,
  nbdcopy: (await sh('nbdcopy', ['--version'])).out.split('\n')[0]!,
};
console.log(`tools: ${Object.values(tools).join('; ')}`);

process.env.LAZYBD_VM_CACHE = CACHE; // read by boot-image.ts when first imported, just below
if (opts.mirror) process.env.LAZYBD_VM_MIRROR = opts.mirror;
const { bootImageDir, DEFAULT_INPUTS, BUILD_SCRIPT } = await import('../../vm/boot-image.js');
const imageDir = await bootImageDir(DEFAULT_INPUTS);
if (!existsSync(join(imageDir, 'build.json'))) {
  console.log(`building ${imageDir} with ${BUILD_SCRIPT} (debootstrap ${DEFAULT_INPUTS.suite} from ${DEFAULT_INPUTS.mirror}; a few minutes) ...`);
  await mkdir(CACHE, { recursive: true });
  // Its own process group, so a signal here takes debootstrap and chroot along (see cleanupSync).
  const b = spawnOwned('bash', [BUILD_SCRIPT, imageDir, DEFAULT_INPUTS.mirror, DEFAULT_INPUTS.suite, String(DEFAULT_INPUTS.diskMiB)], { detached: true });
  buildGroup = { pid: b.child.pid!, out: imageDir };
  const [code] = (await once(b.child, 'exit')) as [number | null];
  buildGroup = undefined;
  if (code !== 0) throw new Error(`build-boot-image.sh failed (exit ${code}):\n${b.output()}`);
}
const build = JSON.parse(await readFile(join(imageDir, 'build.json'), 'utf8')) as { suite: string; kernelVersion: string; packages: number; buildSeconds: number; builtAt: string };
const DISK = join(imageDir, 'disk.raw');
const virtualSize = await bytesOf(DISK);
console.log(`image: ${DISK}: Debian ${build.suite} minbase + ${build.kernelVersion}, ${build.packages} packages, ${mib(virtualSize)} MiB virtual, built ${build.builtAt} in ${build.buildSeconds.toFixed(0)} s`);

// Raw allocated: du's blocks, and the SEEK_DATA stretches (what a sparse-aware copier reads).
const duBytes = await allocatedOf(DISK);
const dataStretches: [number, number][] = [];
{
  const h = await open(DISK, 'r');
  for (let batch = await dataRegions(h.fd, 0, virtualSize, 4096); batch.length > 0; batch = await dataRegions(h.fd, batch[batch.length - 1]![1], virtualSize, 4096)) dataStretches.push(...batch);
  await h.close();
}
const seekDataBytes = dataStretches.reduce((s, [a, b]) => s + b - a, 0);
// fio reads the prefix of the device that holds 80% of the data, not the whole 2 GiB (mostly holes,
// which cost nothing to serve and would hide what compression does to a read of data).
let fioRegion = 0;
for (let acc = 0, i = 0; i < dataStretches.length && acc < 0.8 * seekDataBytes; i++) {
  const [a, b] = dataStretches[i]!;
  acc += b - a;
  fioRegion = Math.ceil(b / MiB) * MiB;
}

// ---- 2. sizes ---------------------------------------------------------------------------------
interface SizeRow { format: string; bytes: number | null; note: string; seconds?: number; command: string }
const sizes: SizeRow[] = [];
sizes.push({ format: 'raw disk (virtual)', bytes: virtualSize, note: '', command: 'stat -c %s' });
sizes.push({ format: 'raw allocated (du)', bytes: duBytes, note: '', command: 'du -B1' });
sizes.push({ format: 'raw allocated (SEEK_DATA)', bytes: seekDataBytes, note: `${dataStretches.length} stretches`, command: 'lseek SEEK_DATA/SEEK_HOLE' });

// lazybd variants: the default `create`, plus --compress none|lz4|zstd when the lazybd under test has it.
const createHelp = (await lz(['create', '--help'], {}, true)).out;
const hasCompress = /--compress\b/.test(createHelp);
interface Variant { name: string; flag: string[]; ref: string; store: string; layerBytes?: number; dataBytes?: number; error?: string }
const variants: Variant[] = [{ name: 'default', flag: [], ref: 'size:default', store: join(work, 'store-default') }];
const CODECS = (opts.codecs ?? 'none,lz4,zstd').split(',').filter(Boolean);
for (const c of CODECS) {
  // CODEC or CODEC@CHUNK_SIZE: a chunk size other than the default trades read amplification for ratio.
  const [codec, chunkSize] = c.split('@');
  const tag = c.replace(/[^A-Za-z0-9_.-]/g, '-');
  const flag = ['--compress', codec!, ...(chunkSize ? ['--chunk-size', chunkSize] : [])];
  variants.push({ name: c, flag, ref: `size:${tag}`, store: join(work, `store-${tag}`) });
}
for (const v of variants) {
  if (v.flag.length && !hasCompress) {
    v.error = 'n/a (no --compress)';
    sizes.push({ format: `lazybd --compress ${v.name}`, bytes: null, note: v.error, command: `lazybd create <raw> ${v.ref} --compress ${v.name}` });
    continue;
  }
  const cmd = ['create', DISK, v.ref, ...v.flag, '--json'];
  const r = await lz(cmd, { LAZYBD_STORE: v.store }, true);
  const label = v.flag.length ? `lazybd --compress ${v.name}` : 'lazybd create (no flag)';
  if (r.status !== 0) {
    v.error = `n/a (${(/lazybd: .*/.exec(r.out)?.[0] ?? r.out.trim().split('\n').pop() ?? '').slice(0, 80)})`;
    sizes.push({ format: label, bytes: null, note: v.error, command: `lazybd ${cmd.join(' ')}` });
    continue;
  }
  const info = JSON.parse((await lz(['inspect', v.ref, '--json'], { LAZYBD_STORE: v.store })).out) as { allocatedBytes: number; layers: { digest: string; size: number; chunks: number }[] };
  const layer = info.layers[0]!;
  const blob = join(v.store, 'blobs', 'sha256', layer.digest.slice('sha256:'.length));
  const blobBytes = await bytesOf(blob);
  if (blobBytes !== layer.size) throw new Error(`${v.ref}: inspect says ${layer.size} B, the blob file has ${blobBytes} B`);
  v.layerBytes = layer.size;
  v.dataBytes = info.allocatedBytes;
  sizes.push({ format: label, bytes: layer.size, note: `${layer.chunks} chunks; data ${mib(info.allocatedBytes)} MiB non-zero`, seconds: r.ms / 1000, command: `lazybd create <raw> ${v.ref}${v.flag.length ? ' ' + v.flag.join(' ') : ''}` });
}

// qcow2, compressed clusters (64 KiB, like lazybd's chunks).
const qcow2: Record<string, string> = {};
for (const [name, extra] of [['zlib', []], ['zstd', ['-o', 'compression_type=zstd']]] as const) {
  const out = join(work, `disk-${name}.qcow2`);
  const args = ['convert', '-c', '-f', 'raw', '-O', 'qcow2', ...extra, DISK, out];
  const r = await sh('qemu-img', args);
  qcow2[name] = out;
  sizes.push({ format: `qcow2 -c ${name}`, bytes: await bytesOf(out), note: `du ${mib(await allocatedOf(out))} MiB`, seconds: r.ms / 1000, command: `qemu-img ${args.join(' ').replace(DISK, '<raw>').replace(out, 'out.qcow2')}` });
}

// The rootfs tree as an OCI layer would hold it: tar of the mounted file system (read-only, no journal replay).
const mnt = join(work, 'rootfs');
await mkdir(mnt);
await sh('mount', ['-o', 'loop,ro,noload', DISK, mnt]);
mounts.push(mnt);
const tar = join(work, 'rootfs.tar');
const tarArgs = ['--numeric-owner', '--xattrs', "--xattrs-include=*", '--acls', '--sort=name', '--format=pax', '-C', mnt, '-cf', tar, '.'];
const tarRun = await sh('tar', tarArgs);
await sh('umount', [mnt]);
mounts.pop();
sizes.push({ format: 'rootfs tar (uncompressed)', bytes: await bytesOf(tar), note: 'pax, numeric owners, xattrs, acls', seconds: tarRun.ms / 1000, command: 'tar --numeric-owner --xattrs --acls --sort=name --format=pax -C <mnt> -cf rootfs.tar .' });
const gz = join(work, 'rootfs.tar.gz');
const gzRun = await sh('gzip', ['-6', '-n', '-c', tar], { stdoutTo: gz });
sizes.push({ format: 'rootfs tar.gz (gzip -6)', bytes: await bytesOf(gz), note: 'docker layer', seconds: gzRun.ms / 1000, command: 'gzip -6 -n -c rootfs.tar' });
const zst = join(work, 'rootfs.tar.zst');
const zstRun = await sh('zstd', ['-3', '-q', '-f', tar, '-o', zst]);
sizes.push({ format: 'rootfs tar.zst (zstd -3)', bytes: await bytesOf(zst), note: 'OCI zstd layer', seconds: zstRun.ms / 1000, command: 'zstd -3 rootfs.tar' });
await writeFile(tar, ''); // 300+ MiB nobody reads again

const tarZstBytes = sizes.find((s) => s.format.startsWith('rootfs tar.zst'))!.bytes!;
console.log('\n## sizes\n');
console.log('| format | bytes | MiB | / raw allocated (du) | / tar.zst | make (s) | note |');
console.log('|---|---:|---:|---:|---:|---:|---|');
for (const s of sizes) {
  const b = s.bytes;
  console.log(`| ${s.format} | ${b ?? 'n/a'} | ${b === null ? s.note : mib(b)} | ${b === null ? '' : (b / duBytes).toFixed(3)} | ${b === null ? '' : (b / tarZstBytes).toFixed(3)} | ${s.seconds?.toFixed(1) ?? ''} | ${b === null ? '' : s.note} |`);
}

// ---- 3. warm reads ----------------------------------------------------------------------------
const ready = variants.filter((v) => v.layerBytes !== undefined);
interface Server { name: string; uri: string; pid: number; stop: () => Promise<void> }
const servers: Server[] = [];
for (const v of ready) servers.push({ name: `lazybd ${v.name}`, ...(await serve(`warm-${v.name}`, [v.ref], { LAZYBD_STORE: v.store })) });
servers.push({ name: 'qemu-nbd raw', ...(await qemuNbd('qemu-raw', DISK, 'raw')) });
servers.push({ name: 'qemu-nbd qcow2 zstd', ...(await qemuNbd('qemu-qcow2-zstd', qcow2.zstd!, 'qcow2')) });
// Warm: one whole-device read through each server first (page cache, and any decompressed-chunk cache).
const warmCopy: Record<string, number> = {};
for (const s of servers) {
  await sh('nbdcopy', [s.uri, 'null:']);
  warmCopy[s.name] = (await sh('nbdcopy', [s.uri, 'null:'])).ms / 1000;
}
const JOBS = {
  'randread 4k QD16': ['--rw=randread', '--bs=4k', '--iodepth=16'],
  'seqread 1M QD8': ['--rw=read', '--bs=1M', '--iodepth=8'],
} as const;
type Job = keyof typeof JOBS;
interface FioBest { iops: number; mibs: number; cpuUsPerIo: number }
const best: Record<string, Partial<Record<Job, FioBest>>> = {};
for (let round = 1; round <= ROUNDS; round++) {
  for (const job of Object.keys(JOBS) as Job[]) {
    for (const s of servers) {
      const c0 = await cpuSeconds(s.pid);
      const r = await sh('fio', ['--name=size', '--ioengine=nbd', `--uri=${s.uri}`, ...JOBS[job], '--offset=0', `--size=${fioRegion}`, `--runtime=${SECONDS}`, '--time_based', '--output-format=json']);
      const c1 = await cpuSeconds(s.pid);
      const j = (JSON.parse(r.out.slice(r.out.indexOf('{'))) as { jobs: { read: { iops: number; bw_bytes: number; total_ios: number } }[] }).jobs[0]!.read;
      const now = { iops: j.iops, mibs: j.bw_bytes / MiB, cpuUsPerIo: ((c1 - c0) * 1e6) / j.total_ios };
      const prev = (best[s.name] ??= {})[job];
      if (!prev || now.iops > prev.iops) best[s.name]![job] = now;
    }
  }
  console.log(`fio round ${round}/${ROUNDS} done`);
}
for (const s of servers) await s.stop();
const base = ready.find((v) => v.name === 'none') ?? ready.find((v) => v.name === 'default')!;
const baseName = `lazybd ${base.name}`;
console.log(`\n## warm reads: fio nbd engine, unix socket, [0, ${mib(fioRegion)} MiB) of the device (${((100 * dataStretches.filter(([a]) => a < fioRegion).reduce((s, [a, b]) => s + Math.min(b, fioRegion) - a, 0)) / seekDataBytes).toFixed(0)}% of the data), ${SECONDS} s a job, best of ${ROUNDS}; whole-device nbdcopy warm\n`);
console.log(`| server | randread 4k QD16 IOPS (CPU µs/IO) | / ${baseName} | seqread 1M QD8 MiB/s (CPU µs/IO) | / ${baseName} | nbdcopy 2 GiB warm (s) |`);
console.log('|---|---:|---:|---:|---:|---:|');
for (const s of servers) {
  const r = best[s.name]!['randread 4k QD16']!;
  const q = best[s.name]!['seqread 1M QD8']!;
  const br = best[baseName]!['randread 4k QD16']!;
  const bq = best[baseName]!['seqread 1M QD8']!;
  console.log(`| ${s.name} | ${r.iops.toFixed(0)} (${r.cpuUsPerIo.toFixed(1)}) | ${(r.iops / br.iops).toFixed(2)} | ${q.mibs.toFixed(0)} (${q.cpuUsPerIo.toFixed(0)}) | ${(q.mibs / bq.mibs).toFixed(2)} | ${warmCopy[s.name]!.toFixed(2)} |`);
}

// ---- 4. cold lazy reads from a registry -------------------------------------------------------
const { startRegistry } = await import('../../support/registry-server.js');
const registry = await startRegistry();
const proxy = await FaultProxy.start(registry.host);
interface ColdRow { name: string; layerBytes: number; registryBytes: number; requests: number; seconds: number; identical: boolean }
const cold: ColdRow[] = [];
try {
  for (const v of ready) {
    const remote = `${proxy.host}/bench/${v.ref.replace(':', '-')}:1`;
    await lz(['push', v.ref, remote, '--plain-http'], { LAZYBD_STORE: v.store });
    proxy.blobBytes = 0;
    proxy.blobRequests = 0;
    const t = performance.now();
    const s = await serve(`cold-${v.name}`, [remote, '--plain-http'], { LAZYBD_STORE: `${v.store}-cold` });
    const copy = `${v.store}-cold.raw`;
    await sh('nbdcopy', [s.uri, copy]);
    const seconds = (performance.now() - t) / 1000;
    const registryBytes = proxy.blobBytes;
    const requests = proxy.blobRequests;
    await s.stop();
    const identical = (await sh('cmp', [DISK, copy], { allowFail: true })).status === 0;
    await writeFile(copy, '');
    cold.push({ name: v.name, layerBytes: v.layerBytes!, registryBytes, requests, seconds, identical });
  }
} finally {
  await proxy.stop();
  await registry.stop();
}
console.log('\n## cold: `lazybd serve <registry-ref> --prefetch-rate 0` on an empty store, nbdcopy of the whole device (docker-registry on loopback)\n');
console.log('| variant | layer MiB | registry blob MiB | / layer | / tar.zst | blob GETs | serve + whole read (s) | read == raw |');
console.log('|---|---:|---:|---:|---:|---:|---:|---|');
for (const c of cold) console.log(`| lazybd ${c.name} | ${mib(c.layerBytes)} | ${mib(c.registryBytes)} | ${(c.registryBytes / c.layerBytes).toFixed(3)} | ${(c.registryBytes / tarZstBytes).toFixed(3)} | ${c.requests} | ${c.seconds.toFixed(2)} | ${c.identical ? 'yes' : 'NO'} |`);

// ---- 5. sanity and goals ----------------------------------------------------------------------
const size = (prefix: string) => sizes.find((s) => s.format.startsWith(prefix))?.bytes ?? null;
const checks: [string, boolean | null][] = [
  ['qcow2 zstd < qcow2 zlib', lt(size('qcow2 -c zstd'), size('qcow2 -c zlib'))],
  ['tar.zst < tar.gz', lt(size('rootfs tar.zst'), size('rootfs tar.gz'))],
  ['tar.gz < tar', lt(size('rootfs tar.gz'), size('rootfs tar (un'))],
  ['SEEK_DATA bytes <= du bytes', seekDataBytes <= duBytes],
  ['every compressed lazybd layer < the uncompressed one', hasCompress ? ready.filter((v) => v.name !== 'none' && v.name !== 'default').every((v) => v.layerBytes! < base.layerBytes!) : null],
  ['lazybd zstd < lz4', lt(variants.find((v) => v.name === 'zstd')?.layerBytes ?? null, variants.find((v) => v.name === 'lz4')?.layerBytes ?? null)],
  ['every cold read is byte-identical to the raw disk', cold.every((c) => c.identical)],
  ['cold registry bytes within 2% of the layer size', cold.every((c) => Math.abs(c.registryBytes / c.layerBytes - 1) < 0.02)],
  ['GOAL lazybd zstd layer <= tar.zst', lt(variants.find((v) => v.name === 'zstd')?.layerBytes ?? null, tarZstBytes + 1)],
  ...(['randread 4k QD16', 'seqread 1M QD8'] as Job[]).map((job): [string, boolean | null] => {
    const z = best['lazybd zstd']?.[job];
    return [`GOAL lazybd zstd warm ${job} >= 0.9x ${baseName}`, z ? z.iops >= 0.9 * best[baseName]![job]!.iops : null];
  }),
];
console.log('\n## checks\n');
for (const [what, ok] of checks) console.log(`- ${ok === null ? 'n/a ' : ok ? 'ok  ' : 'FAIL'} ${what}`);
console.log(`\ntotal ${((performance.now() - t0) / 1000).toFixed(0)} s`);
if (opts.json) await writeFile(opts.json, JSON.stringify({ machine, lazybd: { path: LAZYBD, version: lazybdVersion, hasCompress }, tools, image: { path: DISK, build, virtualSize, duBytes, seekDataBytes, fioRegion }, sizes, warm: best, warmCopySeconds: warmCopy, cold, checks }, null, 1));

function lt(a: number | null, b: number | null): boolean | null {
  return a === null || b === null ? null : a < b;
}

function parseArgs(argv: string[]): Record<string, string> {
  const known = ['cache', 'mirror', 'lazybd', 'codecs', 'seconds', 'rounds', 'json'];
  const out: Record<string, string> = {};
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i]!.replace(/^--/, '');
    if (!argv[i]!.startsWith('--') || !known.includes(k) || argv[i + 1] === undefined) {
      console.error(`usage: size.bench.js [--cache DIR] [--mirror URL] [--lazybd PATH] [--codecs LIST] [--seconds S] [--rounds N] [--json FILE]`);
      process.exit(2);
    }
    out[k] = argv[++i]!;
  }
  return out;
}
