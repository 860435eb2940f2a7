// Clones on a live daemon, driven through the CLI and the control socket with real NBD
// clients (qemu-io writes, libnbd reads): divergence, commit, removal while clients are
// connected, restarts (SIGKILL included), one set of fetches for all clones of a lazily
// pulled image, the control API's refusals, and a seeded property run against a model.
import { once } from 'node:events';
import { readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { ExportStatus } from '../lib/control/api.js';
import { ControlClient } from '../lib/control/control-client.js';
import { LAZYBD_BIN, lazybd, withTempDir } from './support/cli.js';
import { FaultProxy } from './support/fault-proxy.js';
import { NbdReader, expectBytes, nbdRead } from './support/nbd-client.js';
import { spawnOwned, waitFor, type Owned } from './support/processes.js';
import { startRegistry } from './support/registry-server.js';
import { pushRunsImage } from './support/runs-image.js';
import { seededRandom } from './support/seeded-random.js';
import { requireTools } from './support/tools.js';
import { pattern, run } from './nbd-fixture.js';

const MiB = 1 << 20;
const SIZE = 16 * MiB;

interface Host {
  dir: string;
  env: NodeJS.ProcessEnv;
  control: string;
  nbd: string;
  /** The base image's first MiB (the rest reads as zeroes). */
  base: Buffer;
}

/** A store holding `base:v1` (16 MiB: a patterned first MiB, holes after). */
async function host(dir: string): Promise<Host> {
  const env = { LAZYBD_STORE: join(dir, 'store'), XDG_RUNTIME_DIR: join(dir, 'run') };
  const raw = join(dir, 'base.raw');
  const base = pattern(MiB, 7);
  await writeFile(raw, base);
  await run('truncate', ['-s', String(SIZE), raw]);
  const r = await lazybd(['create', raw, 'base:v1'], env);
  assert.is(r.status, 0, r.stderr);
  return { dir, env, control: join(dir, 'control.sock'), nbd: join(dir, 'nbd.sock'), base };
}

/** `lazybd serve` with a control socket; resolves once it listens. */
async function startDaemon(h: Host, extra: string[] = []): Promise<Owned> {
  const proc = spawnOwned(process.execPath, [LAZYBD_BIN, 'serve', ...extra, '--socket', h.nbd, '--control', h.control, '--json'], { env: { ...process.env, ...h.env } });
  await waitFor(() => proc.output().includes('"control"') || proc.child.exitCode !== null, 20_000, 'serve to listen');
  assert.is(proc.child.exitCode, null, proc.output());
  return proc;
}

async function sigkill(proc: Owned): Promise<void> {
  const exited = once(proc.child, 'exit');
  proc.child.kill('SIGKILL');
  await exited;
}

/** A control command through the CLI, with --json. */
async function ctl(h: Host, args: string[]) {
  const r = await lazybd([...args, '--daemon', h.control, '--json'], h.env);
  return { ...r, json: r.stdout ? JSON.parse(r.stdout) : undefined };
}

async function clone(h: Host, image: string, name: string): Promise<ExportStatus> {
  const r = await ctl(h, ['clone', image, name]);
  assert.is(r.status, 0, r.stderr);
  return r.json as ExportStatus;
}

const exists = (path: string) => stat(path).then(() => true, () => false);

const uriOf = (h: Host, name: string) => `nbd+unix:///${name}?socket=${h.nbd}`;

/** Writes `byte` over [offset, offset+length) of an export and flushes, with qemu-io. */
async function writeByte(h: Host, name: string, offset: number, length: number, byte: number): Promise<void> {
  await run('qemu-io', ['-f', 'raw', '-c', `write -P ${byte} ${offset} ${length}`, '-c', 'flush', uriOf(h, name)]);
}

/** What the base image holds at [offset, offset+length). */
function baseBytes(h: Host, offset: number, length: number): Buffer {
  const out = Buffer.alloc(length);
  if (offset < h.base.length) h.base.copy(out, 0, offset, Math.min(h.base.length, offset + length));
  return out;
}

async function readsAs(h: Host, name: string, ranges: [number, number][], expected: Buffer[]): Promise<void> {
  assert.equal(await nbdRead(uriOf(h, name), ranges), expected.map(expectBytes), `contents of ${name}`);
}

async function tools(): Promise<boolean> {
  return requireTools('qemu-io', 'nbdsh', 'nbdcopy');
}

test('lazybd rm of an image that clones use is refused, daemon running or stopped, unless --force', async () => {
  if (!(await tools())) return;
  await withTempDir(async (dir) => {
    const h = await host(dir);
    assert.is((await lazybd(['create', join(dir, 'base.raw'), 'spare:v1'], h.env)).status, 0);
    const daemon = await startDaemon(h);
    const rm = async (args: string[]) => {
      const r = await lazybd(['rm', ...args, '--json'], h.env);
      return { status: r.status, body: JSON.parse(r.stdout) };
    };
    try {
      await clone(h, 'base:v1', 'vm');
      const live = await rm(['base:v1']);
      assert.is(live.status, 3);
      assert.is(live.body.error.code, 'E_IMAGE_IN_USE');
      assert.match(live.body.error.message, new RegExp(`clone vm of daemon ${daemon.child.pid}`));
      assert.is((await rm(['spare:v1'])).status, 0, 'an image nothing uses goes');
    } finally {
      await daemon.stop();
    }
    const stopped = await rm(['base:v1']);
    assert.is(stopped.status, 3);
    assert.match(stopped.body.error.message, /clone vm kept in .*daemon/, 'the stopped daemon will want it back');
    const forced = await rm(['base:v1', '--force']);
    assert.is(forced.status, 0);
    assert.not.ok((await lazybd(['images', '--json'], h.env)).stdout.includes('base:v1'));
  });
});

test('two clones of one image diverge independently; each shows the base where it has not written', async () => {
  if (!(await tools())) return;
  await withTempDir(async (dir) => {
    const h = await host(dir);
    const daemon = await startDaemon(h);
    try {
      const a = await clone(h, 'base:v1', 'a');
      const b = await clone(h, 'base:v1', 'b');
      assert.is(a.uri, uriOf(h, 'a'));
      assert.ok(a.writable && b.writable);
      await writeByte(h, 'a', 0, 65536, 0xab);
      await writeByte(h, 'b', 4 * MiB, 65536, 0xcd);
      const ranges: [number, number][] = [[0, 65536], [4 * MiB, 65536], [65536, 65536]];
      await readsAs(h, 'a', ranges, [Buffer.alloc(65536, 0xab), baseBytes(h, 4 * MiB, 65536), baseBytes(h, 65536, 65536)]);
      await readsAs(h, 'b', ranges, [baseBytes(h, 0, 65536), Buffer.alloc(65536, 0xcd), baseBytes(h, 65536, 65536)]);
      const list = (await ctl(h, ['clones'])).json as ExportStatus[];
      assert.equal(list.map((c) => [c.export, c.kind, c.ref, c.clients]), [['a', 'clone', 'base:v1', 0], ['b', 'clone', 'base:v1', 0]]);
      // The image itself was never changed: a third clone sees only the base.
      await clone(h, 'base:v1', 'c');
      await readsAs(h, 'c', ranges, [baseBytes(h, 0, 65536), baseBytes(h, 4 * MiB, 65536), baseBytes(h, 65536, 65536)]);
    } finally {
      await daemon.stop();
    }
  });
});

test('a committed clone is an image: it shows the change, can itself be cloned; commit waits for clients to leave', async () => {
  if (!(await tools())) return;
  await withTempDir(async (dir) => {
    const h = await host(dir);
    const daemon = await startDaemon(h);
    try {
      await clone(h, 'base:v1', 'vm');
      await writeByte(h, 'vm', 2 * MiB, 3 * 65536, 0x5a);
      const client = await NbdReader.open(h.nbd, 'vm');
      await waitFor(async () => ((await ctl(h, ['clones'])).json as ExportStatus[])[0]!.clients === 1, 5000, 'the client to count');
      const busy = await ctl(h, ['clone', 'commit', 'vm', 'vm-snap:v1']);
      assert.is(busy.status, 2);
      assert.match(busy.stderr, /E_CLONE_IN_USE/);
      client.close();
      await waitFor(async () => ((await ctl(h, ['clones'])).json as ExportStatus[])[0]!.clients === 0, 5000, 'the client to leave');
      const commit = await ctl(h, ['clone', 'commit', 'vm', 'vm-snap:v1']);
      assert.is(commit.status, 0, commit.stderr);
      assert.is(commit.json.base, 'base:v1');
      assert.is(commit.json.dataBytes, 3 * 65536);
      // The committed image, flattened by the CLI, is the base with the clone's write.
      const expected = Buffer.concat([baseBytes(h, 0, SIZE)]);
      expected.fill(0x5a, 2 * MiB, 2 * MiB + 3 * 65536);
      const out = join(dir, 'snap.raw');
      assert.is((await lazybd(['export', 'vm-snap:v1', out], h.env)).status, 0);
      assert.ok((await readFile(out)).equals(expected), 'exported commit = base + write');
      // A clone of the commit starts from it and diverges on its own; the original clone is untouched by that.
      await clone(h, 'vm-snap:v1', 'vm2');
      await writeByte(h, 'vm2', 2 * MiB, 65536, 0x11);
      await readsAs(h, 'vm2', [[2 * MiB, 3 * 65536]], [Buffer.concat([Buffer.alloc(65536, 0x11), Buffer.alloc(2 * 65536, 0x5a)])]);
      await readsAs(h, 'vm', [[2 * MiB, 65536]], [Buffer.alloc(65536, 0x5a)]);
    } finally {
      await daemon.stop();
    }
  });
});

test('clone rm: refused while a client is connected, --force drops it; the upper is deleted, or kept with --keep', async () => {
  if (!(await tools())) return;
  await withTempDir(async (dir) => {
    const h = await host(dir);
    const daemon = await startDaemon(h);
    try {
      const one = await clone(h, 'base:v1', 'one');
      const two = await clone(h, 'base:v1', 'two');
      await writeByte(h, 'two', 0, 4096, 0x22);
      const client = await NbdReader.open(h.nbd, 'one');
      await waitFor(async () => ((await ctl(h, ['clones'])).json as ExportStatus[])[0]!.clients === 1, 5000, 'the client to count');
      const refused = await ctl(h, ['clone', 'rm', 'one']);
      assert.is(refused.status, 2);
      assert.match(refused.stderr, /1 NBD client connected.*E_CLONE_IN_USE/);
      assert.ok((await stat(one.upperDir!)).isDirectory(), 'refused: upper still there');
      const forced = await ctl(h, ['clone', 'rm', 'one', '--force']);
      assert.is(forced.status, 0, forced.stderr);
      assert.ok(await client.read(0, 4096).then(() => false, () => true), 'the forced-out client is disconnected');
      assert.not.ok(await exists(one.upperDir!), 'upper deleted');
      const kept = await ctl(h, ['clone', 'rm', 'two', '--keep']);
      assert.is(kept.status, 0, kept.stderr);
      const keptUpper = kept.json.keptUpper as string;
      assert.ok((await readdir(keptUpper)).includes('base.json'), `kept upper in ${keptUpper}`);
      assert.not.ok(await exists(two.upperDir!), 'upper moved away');
      assert.equal((await ctl(h, ['clones'])).json, []);
      const gone = await ctl(h, ['clone', 'rm', 'two']);
      assert.is(gone.status, 2);
      assert.match(gone.stderr, /E_CLONE_NOT_FOUND/);
      // The name is free again, with a fresh upper.
      await clone(h, 'base:v1', 'two');
      await readsAs(h, 'two', [[0, 4096]], [baseBytes(h, 0, 4096)]);
    } finally {
      await daemon.stop();
    }
  });
});

test('a restarted daemon brings its clones back with their flushed writes, after SIGTERM and after SIGKILL', async () => {
  if (!(await tools())) return;
  await withTempDir(async (dir) => {
    const h = await host(dir);
    let daemon = await startDaemon(h);
    try {
      await clone(h, 'base:v1', 'x');
      await writeByte(h, 'x', MiB - 2048, 4096, 0x77);
      await daemon.stop();
      daemon = await startDaemon(h);
      const expected = Buffer.concat([baseBytes(h, MiB - 2048, 2048), Buffer.alloc(2048)]).fill(0x77);
      await readsAs(h, 'x', [[MiB - 2048, 4096]], [expected]);
      // Killed right after a clone was made and written: the state and the flushed write survive.
      await clone(h, 'base:v1', 'y');
      await writeByte(h, 'y', 8 * MiB, 65536, 0x99);
      await sigkill(daemon);
      daemon = await startDaemon(h);
      const list = (await ctl(h, ['clones'])).json as ExportStatus[];
      assert.equal(list.map((c) => c.export), ['x', 'y']);
      await readsAs(h, 'y', [[8 * MiB, 65536]], [Buffer.alloc(65536, 0x99)]);
      await readsAs(h, 'x', [[MiB - 2048, 4096]], [expected]);
      // `lazybd status` asks the daemon itself.
      const status = await lazybd(['status', '--json'], h.env);
      const mine = (JSON.parse(status.stdout) as { pid: number; exports: ExportStatus[] }[]).find((d) => d.pid === daemon.child.pid);
      assert.equal(mine?.exports.map((e) => e.export), ['x', 'y']);
    } finally {
      await daemon.stop();
    }
  });
});

test('clones added and removed while another clone is read: its reads stay right throughout', async () => {
  if (!(await tools())) return;
  await withTempDir(async (dir) => {
    const h = await host(dir);
    const daemon = await startDaemon(h);
    try {
      await clone(h, 'base:v1', 'busy');
      await writeByte(h, 'busy', 0, 65536, 0x42);
      const reader = await NbdReader.open(h.nbd, 'busy');
      const expected = [Buffer.alloc(65536, 0x42), baseBytes(h, 65536, 65536)];
      let reads = 0;
      let stop = false;
      const reading = (async () => {
        // Bounded: ends when the churn below is done, or after 5,000 reads.
        while (!stop && reads < 5000) {
          const i = reads++ % 2;
          const got = await reader.read(i * 65536, 65536);
          if (!Buffer.isBuffer(got) || !got.equals(expected[i]!)) throw new Error(`read ${reads} of busy was wrong: ${JSON.stringify(Buffer.isBuffer(got) ? 'bytes' : got)}`);
        }
      })();
      const control = new ControlClient(h.control);
      try {
        for (let i = 0; i < 6; i++) {
          await control.addClone({ image: 'base:v1', name: `churn${i}` });
          if (i % 2) await control.removeClone(`churn${i - 1}`);
        }
      } finally {
        stop = true;
        await reading;
        await control.close();
        reader.close();
      }
      assert.ok(reads > 6, `reads went on during the churn (${reads})`);
      const names = ((await ctl(h, ['clones'])).json as ExportStatus[]).map((c) => c.export);
      assert.equal(names, ['busy', 'churn1', 'churn3', 'churn5']);
    } finally {
      await daemon.stop();
    }
  });
});

test('ten clones of a lazily pulled image read through one cache: each chunk comes from the registry once', async () => {
  if (!(await requireTools('docker-registry', 'nbdsh'))) return;
  await withTempDir(async (dir) => {
    const registry = await startRegistry();
    const proxy = await FaultProxy.start(registry.host);
    try {
      const remote = `${proxy.host}/clones/disk:v1`;
      const { source, runs } = await pushRunsImage(dir, remote, { size: 32 * MiB, count: 4, runLength: MiB });
      const h: Host = { dir, env: { LAZYBD_STORE: join(dir, 'node'), XDG_RUNTIME_DIR: join(dir, 'run') }, control: join(dir, 'control.sock'), nbd: join(dir, 'nbd.sock'), base: Buffer.alloc(0) };
      const daemon = await startDaemon(h, ['--plain-http', '--prefetch-rate', '0']);
      const control = new ControlClient(h.control);
      try {
        for (let i = 0; i < 10; i++) await control.addClone({ image: remote, name: `vm${i}` });
        const before = proxy.blobBytes;
        const ranges: [number, number][] = runs.map((r) => [r + 4096, 256 * 1024]);
        const want = ranges.map(([o, n]) => expectBytes(source.subarray(o, o + n)));
        await Promise.all(Array.from({ length: 10 }, async (_, i) => assert.equal(await nbdRead(uriOf(h, `vm${i}`), ranges), want, `vm${i}`)));
        const fetched = proxy.blobBytes - before;
        const wanted = ranges.reduce((n, [, len]) => n + len, 0);
        assert.ok(fetched >= wanted && fetched < 2 * wanted, `ten clones fetched ${fetched} bytes for ${wanted} bytes of reads (one clone's worth)`);
        const status = await control.status();
        assert.equal(new Set(status.exports.map((e) => `${e.ref} ${e.sources[0]} ${e.manifestDigest}`)).size, 1, 'one image, read through the cache');
      } finally {
        await control.close();
        await daemon.stop();
      }
    } finally {
      await proxy.stop();
      await registry.stop();
    }
  });
});

test('the control API: owner-only socket, coded refusals, nothing left behind by a failed clone', async () => {
  if (!(await tools())) return;
  await withTempDir(async (dir) => {
    const h = await host(dir);
    const none = await lazybd(['clones'], h.env);
    assert.is(none.status, 2);
    assert.match(none.stderr, /E_NO_DAEMON/);
    const daemon = await startDaemon(h);
    try {
      assert.is((await stat(h.control)).mode & 0o777, 0o600);
      // Without --daemon the only running daemon is found.
      const found = await lazybd(['clone', 'base:v1', 'found', '--json'], h.env);
      assert.is(found.status, 0, found.stderr);
      const refusals: [string[], RegExp][] = [
        [['clone', 'base:v1', 'found'], /E_EXPORT_EXISTS/],
        [['clone', 'base:v1', '../escape'], /E_CLONE_NAME_INVALID/],
        [['clone', 'nothere:v1', 'n1'], /E_[A-Z_]*NOT_FOUND/],
        [['clone', 'commit', 'found', 'registry.example:5000/x:y'], /commit to a local name/],
        [['exports', 'rm', 'found'], /E_EXPORT_NOT_FOUND/],
      ];
      for (const [args, code] of refusals) {
        const r = await ctl(h, args);
        assert.is(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
        assert.match(r.stderr, code);
      }
      assert.equal((await readdir(join(h.env.LAZYBD_STORE!, 'daemon', 'uppers'))).sort(), ['found']);
      const raw = (method: string, path: string, body?: string) =>
        new Promise<{ status: number; body: { error?: { code: string } } }>((resolve, reject) => {
          const req = request({ socketPath: h.control, method, path, headers: { 'content-type': 'application/json' } }, (res) => {
            let text = '';
            res.on('data', (d) => (text += d));
            res.on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(text) }));
          });
          req.on('error', reject);
          req.end(body);
        });
      assert.equal(await raw('POST', '/v1/clones', '{not json'), { status: 400, body: { error: { code: 'E_CONTROL_BAD_REQUEST', message: 'request body is not JSON', exitStatus: 2 } } });
      assert.is((await raw('POST', '/v1/clones', JSON.stringify({ image: 'base:v1' }))).body.error?.code, 'E_CONTROL_BAD_REQUEST');
      assert.is((await raw('POST', '/v1/clones', 'x'.repeat(70_000))).status, 400);
      assert.is((await raw('GET', '/v2/anything')).status, 404);
      // A second daemon: the CLI asks which one.
      const other: Host = { ...h, control: join(dir, 'control2.sock'), nbd: join(dir, 'nbd2.sock'), env: { ...h.env, LAZYBD_STORE: join(dir, 'store2') } };
      const second = await startDaemon(other);
      try {
        const ambiguous = await lazybd(['clones'], h.env);
        assert.is(ambiguous.status, 2);
        assert.match(ambiguous.stderr, /2 lazybd daemons are running.*E_DAEMON_AMBIGUOUS/);
      } finally {
        await second.stop();
      }
    } finally {
      await daemon.stop();
    }
  });
});

test('exports add/rm serve more images read-only at run time, kept across a restart; the state dir has one owner', async () => {
  if (!(await tools())) return;
  await withTempDir(async (dir) => {
    const h = await host(dir);
    let daemon = await startDaemon(h);
    try {
      const added = await ctl(h, ['exports', 'add', 'base:v1', '--name', 'ro']);
      assert.is(added.status, 0, added.stderr);
      assert.is(added.json.writable, false);
      assert.ok(await writeByte(h, 'ro', 0, 4096, 1).then(() => false, () => true), 'a read-only export refuses writes');
      await readsAs(h, 'ro', [[0, 65536]], [baseBytes(h, 0, 65536)]);
      // Another daemon naming the same state directory is refused; one on the same store
      // without --state-dir (lazybd mount's, say) serves, but cannot make clones.
      const stateDir = join(h.env.LAZYBD_STORE!, 'daemon');
      const rival = spawnOwned(process.execPath, [LAZYBD_BIN, 'serve', '--socket', join(dir, 'r.sock'), '--control', join(dir, 'r.ctl'), '--state-dir', stateDir], { env: { ...process.env, ...h.env } });
      await waitFor(() => rival.child.exitCode !== null, 20_000, 'the rival to give up');
      assert.is(rival.child.exitCode, 2);
      assert.match(rival.output(), /E_STATE_IN_USE/);
      const neighbour = await startDaemon({ ...h, control: join(dir, 'n.ctl'), nbd: join(dir, 'n.sock') }, ['base:v1', '--export', 'plain']);
      try {
        await readsAs({ ...h, nbd: join(dir, 'n.sock') }, 'plain', [[0, 4096]], [baseBytes(h, 0, 4096)]);
        const refused = await lazybd(['clone', 'base:v1', 'nope', '--daemon', join(dir, 'n.ctl')], h.env);
        assert.is(refused.status, 2);
        assert.match(refused.stderr, /E_STATE_IN_USE/);
      } finally {
        await neighbour.stop();
      }
      await daemon.stop();
      daemon = await startDaemon(h);
      assert.equal(((await ctl(h, ['exports'])).json as ExportStatus[]).map((e) => [e.export, e.kind]), [['ro', 'image']]);
      assert.is((await ctl(h, ['exports', 'rm', 'ro'])).status, 0);
      await daemon.stop();
      // A state file that is not one stops the daemon with a code; nothing is deleted.
      const statePath = join(h.env.LAZYBD_STORE!, 'daemon', 'state.json');
      await writeFile(statePath, '{"version": 9}');
      const broken = spawnOwned(process.execPath, [LAZYBD_BIN, 'serve', '--socket', h.nbd, '--control', h.control], { env: { ...process.env, ...h.env } });
      await waitFor(() => broken.child.exitCode !== null, 20_000, 'serve to refuse the state');
      assert.is(broken.child.exitCode, 3);
      assert.match(broken.output(), /E_STATE_CORRUPT/);
      assert.is(await readFile(statePath, 'utf8'), '{"version": 9}');
    } finally {
      await daemon.stop();
    }
  });
});

test('property: random clone/write/remove/restart sequences agree with a model of the disks', async () => {
  if (!(await tools())) return;
  await withTempDir(async (dir) => {
    const h = await host(dir);
    const seed = Number(process.env.LAZYBD_PROPERTY_SEED ?? 20261203);
    const rnd = seededRandom(seed);
    const BLOCK = 65536;
    const BLOCKS = SIZE / BLOCK;
    /** Per clone: block number → the byte written there last (unset: the base's bytes). */
    const model = new Map<string, Map<number, number>>();
    let daemon = await startDaemon(h);
    let next = 0;
    const trail: string[] = [];
    try {
      for (let step = 0; step < 28; step++) {
        const names = [...model.keys()];
        const op = names.length === 0 ? 0 : rnd(10);
        const name = names[rnd(names.length)]!;
        if (op <= 2 && model.size < 5) {
          const n = `p${next++}`;
          trail.push(`clone ${n}`);
          await clone(h, 'base:v1', n);
          model.set(n, new Map());
        } else if (op <= 6) {
          const block = rnd(BLOCKS);
          const byte = 1 + rnd(254);
          trail.push(`write ${name} block ${block} = ${byte}`);
          await writeByte(h, name, block * BLOCK, BLOCK, byte);
          model.get(name)!.set(block, byte);
        } else if (op === 7) {
          trail.push(`rm ${name}`);
          assert.is((await ctl(h, ['clone', 'rm', name])).status, 0);
          model.delete(name);
        } else {
          const how = op === 8 ? 'SIGTERM' : 'SIGKILL';
          trail.push(`restart (${how})`);
          if (how === 'SIGTERM') await daemon.stop();
          else await sigkill(daemon);
          daemon = await startDaemon(h);
        }
        // After every step: the daemon's clones are the model's, and sampled blocks (every written one, two others) match.
        const listed = ((await ctl(h, ['clones'])).json as ExportStatus[]).map((c) => c.export).sort();
        assert.equal(listed, [...model.keys()].sort(), `clones after ${trail.join('; ')} (seed ${seed})`);
        for (const [n, blocks] of model) {
          const sample = [...new Set([...blocks.keys(), rnd(BLOCKS), 0])];
          const want = sample.map((b) => (blocks.has(b) ? Buffer.alloc(BLOCK, blocks.get(b)!) : baseBytes(h, b * BLOCK, BLOCK)));
          assert.equal(await nbdRead(uriOf(h, n), sample.map((b) => [b * BLOCK, BLOCK] as [number, number])), want.map(expectBytes), `${n} after ${trail.join('; ')} (seed ${seed})`);
        }
      }
    } finally {
      await daemon.stop();
    }
  });
});

test.run();
