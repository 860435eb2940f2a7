// `lazybd serve` as a process, driven by real NBD clients: writes into an upper, block
// status, read-only, several exports, TCP, upper locking and binding, durability across
// SIGKILL, fio verification, and commit of trimmed/zeroed ranges.
import { once } from 'node:events';
import { stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { LAZYBD_BIN, lazybd, withTempDir } from './support/cli.js';
import { spawnOwned, waitFor, type Owned } from './support/processes.js';
import { freePort } from './support/registry-server.js';
import { requireTools } from './support/tools.js';
import { fileIoBackend } from '../lib/store/native-io.js';
import { nbdsh, pattern, run } from './nbd-fixture.js';

const MiB = 1024 * 1024;
/** python3-libnbd belongs to the system python: put /usr/bin first for nbdsh. */
const nbdshEnv = { ...process.env, PATH: `/usr/bin:${process.env.PATH ?? ''}` };

interface Served {
  proc: Owned;
  uri(exportName?: string): string;
}

/** Starts `lazybd serve … --json` and resolves once it printed where it listens. */
async function serve(env: NodeJS.ProcessEnv, args: string[]): Promise<Served> {
  const proc = spawnOwned(process.execPath, [LAZYBD_BIN, 'serve', ...args, '--json'], { env: { ...process.env, ...env } });
  try {
    await waitFor(() => {
      if (proc.child.exitCode !== null) throw new Error(`serve exited ${proc.child.exitCode}:\n${proc.output()}`);
      return proc.output().includes('"exports"');
    }, 20_000, 'lazybd serve to listen');
  } catch (e) {
    await proc.stop();
    throw e;
  }
  const { exports } = JSON.parse(proc.output().split('\n').find((l) => l.includes('"exports"'))!) as { exports: { export: string; uri: string }[] };
  return { proc, uri: (name) => (name ? exports.find((x) => x.export === name)! : exports[0]!).uri };
}

/** Runs `lazybd serve` expecting it to refuse to start; returns its status and output. */
async function serveFails(env: NodeJS.ProcessEnv, args: string[]): Promise<{ status: number | null; output: string }> {
  const proc = spawnOwned(process.execPath, [LAZYBD_BIN, 'serve', ...args], { env: { ...process.env, ...env } });
  try {
    await waitFor(() => proc.child.exitCode !== null, 20_000, 'lazybd serve to refuse');
    return { status: proc.child.exitCode, output: proc.output() };
  } finally {
    await proc.stop();
  }
}

/**
 * `serve --listen` on a port freePort() found. The port is free when chosen but not held
 * until the daemon binds it, and something else on the machine may take it in between:
 * only that lost race is tried again, on another port.
 */
async function serveOnFreePort(env: NodeJS.ProcessEnv, args: string[]): Promise<{ port: number; served: Served }> {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    try {
      return { port, served: await serve(env, [...args, '--listen', `127.0.0.1:${port}`]) };
    } catch (e) {
      if (!/EADDRINUSE/.test(String(e)) || attempt === 5) throw e;
    }
  }
}

async function sigkill(s: Served): Promise<void> {
  const exited = once(s.proc.child, 'exit');
  s.proc.child.kill('SIGKILL');
  await exited;
}

/** An image `name:v1` of `size` bytes whose first MiB is pattern(seed) (also in `<name>.base`) and the rest holes. */
async function makeImage(dir: string, env: NodeJS.ProcessEnv, name: string, size: number, seed = 1): Promise<void> {
  const raw = join(dir, `${name}.raw`);
  await writeFile(raw, pattern(MiB, seed));
  await writeFile(join(dir, `${name}.base`), pattern(MiB, seed));
  await run('truncate', ['-s', String(size), raw]);
  const r = await lazybd(['create', raw, `${name}:v1`], env);
  assert.is(r.status, 0, r.stderr);
}

async function withImage(fn: (dir: string, env: NodeJS.ProcessEnv) => Promise<void>, size = 64 * MiB): Promise<void> {
  await withTempDir(async (dir) => {
    // Status files too: SIGKILLed daemons cannot remove theirs, so keep them in the temp dir.
    const env = { LAZYBD_STORE: join(dir, 'store'), XDG_RUNTIME_DIR: dir };
    await makeImage(dir, env, 'a', size);
    await fn(dir, env);
  });
}

interface MapEntry {
  offset: number;
  length: number;
  type: number;
}

async function blockMap(uri: string): Promise<MapEntry[]> {
  const { stdout } = await run('nbdinfo', ['--map', '--json', uri]);
  return JSON.parse(stdout) as MapEntry[];
}

/** The base:allocation flags (1 hole, 2 zero) over [offset, offset+length), which must be uniform. */
function typeOver(map: MapEntry[], offset: number, length: number): number {
  const covering = map.filter((e) => e.offset < offset + length && e.offset + e.length > offset);
  const types = new Set(covering.map((e) => e.type));
  assert.is(types.size, 1, `[${offset}, +${length}) has mixed types: ${JSON.stringify(covering)}`);
  return covering[0]!.type;
}

/** Python prelude for nbdsh scripts. */
const prelude = `
import errno, nbd, random, sys, time
def connect(uri):
    h = nbd.NBD()
    h.set_strict_mode(0)  # let the server, not libnbd, refuse what it must
    h.add_meta_context("base:allocation")
    h.connect_uri(uri)
    return h
def expect_errno(code, fn, *args):
    try:
        fn(*args)
    except nbd.Error as e:
        got = e.errno if isinstance(e.errno, int) else getattr(errno, e.errno)
        assert got == code, "expected %s, got %s (%s)" % (errno.errorcode[code], e.errno, e.string)
        return
    raise AssertionError("expected %s, call succeeded" % errno.errorcode[code])
`;

/**
 * Runs a write script under nbdsh with the connection still open, then SIGKILLs the
 * daemon: nothing gets a chance to flush on a disconnect or a signal.
 */
async function writeThenKill(s: Served, script: string): Promise<void> {
  const py = spawnOwned('nbdsh', ['-c', `${prelude}\n${script}\nsys.stdout.write("WRITTEN\\n"); sys.stdout.flush()\ntime.sleep(60)\n`], { env: nbdshEnv });
  try {
    await waitFor(() => {
      if (py.child.exitCode !== null) throw new Error(`nbdsh failed:\n${py.output()}`);
      return py.output().includes('WRITTEN');
    }, 30_000, 'nbdsh to write');
    await sigkill(s);
  } finally {
    await py.stop(500);
  }
}

test('serve with an upper: qemu-io patterns at unaligned offsets read back, persist, and show in the block map', async () => {
  if (!(await requireTools('qemu-io', 'nbdinfo'))) return;
  await withImage(async (dir, env) => {
    const upper = join(dir, 'upper');
    const writes: [number, number, number][] = [
      [0xab, 1000, 5000],
      [0xcd, 3 * MiB + 7, 65536 + 3],
      [0x5a, MiB - 100, 200], // straddles the end of the base data
    ];
    const io = async (uri: string, cmds: string[]) => {
      const { stdout, stderr } = await run('qemu-io', ['-f', 'raw', ...cmds.flatMap((c) => ['-c', c]), uri]);
      assert.not.match(stdout + stderr, /Pattern verification failed|error/i);
    };
    let s = await serve(env, ['a:v1', '--upper', upper, '--socket', join(dir, 's.sock')]);
    try {
      await io(s.uri(), writes.map(([p, off, len]) => `write -P ${p} ${off} ${len}`));
      await io(s.uri(), writes.map(([p, off, len]) => `read -P ${p} ${off} ${len}`));
      const map = await blockMap(s.uri());
      assert.is(typeOver(map, 3 * MiB, 65536), 0, 'written range is data');
      assert.is(typeOver(map, 32 * MiB, 32 * MiB), 3, 'untouched range is a hole');
      assert.is(typeOver(map, 0, 512), 0, 'base data stays data');
    } finally {
      await s.proc.stop();
    }
    // A clean stop flushed the upper: a new daemon serves the same bytes.
    s = await serve(env, ['a:v1', '--upper', upper, '--socket', join(dir, 's.sock')]);
    try {
      await io(s.uri(), [...writes.map(([p, off, len]) => `read -P ${p} ${off} ${len}`), 'read -P 0 2000000 4096']);
      await nbdsh(`${prelude}
base = open("${join(dir, 'a.base')}", "rb").read()
h = connect("${s.uri()}")
assert h.pread(1000, 0) == base[:1000], "base bytes before the first write"
assert h.pread(4096, 8192) == base[8192:12288], "base bytes after it"
`);
    } finally {
      await s.proc.stop();
    }
  });
});

test('read-only: --read-only with an upper, and no upper at all, refuse writes with EPERM', async () => {
  if (!(await requireTools('nbdsh'))) return;
  await withImage(async (dir, env) => {
    for (const args of [['--upper', join(dir, 'upper'), '--read-only'], []]) {
      const s = await serve(env, ['a:v1', '--socket', join(dir, 'ro.sock'), ...args]);
      try {
        await nbdsh(`${prelude}
h = connect("${s.uri()}")
assert h.is_read_only()
expect_errno(errno.EPERM, h.pwrite, b"x" * 512, 0)
expect_errno(errno.EPERM, h.trim, 4096, 0)
expect_errno(errno.EPERM, h.zero, 4096, 0)
assert h.pread(512, 0) == open("${join(dir, 'a.base')}", "rb").read(512)
`);
      } finally {
        await s.proc.stop();
      }
    }
  });
});

test('one daemon serves two images under their export names; TCP on a chosen port', async () => {
  if (!(await requireTools('nbdinfo', 'nbdsh'))) return;
  await withImage(async (dir, env) => {
    await makeImage(dir, env, 'b', 32 * MiB, 2);
    const s = await serve(env, ['a:v1', 'b:v1', '--socket', join(dir, 'two.sock')]);
    try {
      const { stdout } = await run('nbdinfo', ['--list', '--json', s.uri('a:v1')]);
      const exports = (JSON.parse(stdout) as { exports: { 'export-name': string; 'export-size': number }[] }).exports;
      assert.equal(exports.map((e) => [e['export-name'], e['export-size']]).sort(), [['a:v1', 64 * MiB], ['b:v1', 32 * MiB]]);
      await nbdsh(`${prelude}
for uri, seed in (("${s.uri('a:v1')}", "${pattern(64, 1).toString('hex')}"), ("${s.uri('b:v1')}", "${pattern(64, 2).toString('hex')}")):
    assert connect(uri).pread(64, 0) == bytes.fromhex(seed), uri
`);
    } finally {
      await s.proc.stop();
    }
    const { port, served: t } = await serveOnFreePort(env, ['a:v1']);
    try {
      assert.is(t.uri(), `nbd://127.0.0.1:${port}/a:v1`);
      const { stdout } = await run('nbdinfo', ['--size', t.uri()]);
      assert.is(Number(stdout), 64 * MiB);
    } finally {
      await t.proc.stop();
    }
  });
});

test('an upper is used by one daemon at a time, and only over the image it was made on', async () => {
  await withImage(async (dir, env) => {
    await makeImage(dir, env, 'b', 64 * MiB, 2);
    const upper = join(dir, 'upper');
    const s = await serve(env, ['a:v1', '--upper', upper, '--socket', join(dir, 'one.sock')]);
    try {
      const second = await serveFails(env, ['a:v1', '--upper', upper, '--socket', join(dir, 'two.sock')]);
      assert.is(second.status, 2, second.output);
      assert.match(second.output, /E_UPPER_LOCKED/);
    } finally {
      await s.proc.stop();
    }
    const other = await serveFails(env, ['b:v1', '--upper', upper, '--socket', join(dir, 'three.sock')]);
    assert.is(other.status, 2, other.output);
    assert.match(other.output, /E_UPPER_BASE_MISMATCH/);
  });
});

test('SIGKILL: flushed and FUA writes survive, unflushed writes never corrupt flushed data', async () => {
  if (!(await requireTools('nbdsh'))) return;
  await withImage(async (dir, env) => {
    const upper = join(dir, 'upper');
    const args = ['a:v1', '--upper', upper, '--socket', join(dir, 'k.sock')];
    let s = await serve(env, args);
    try {
      // 1. pwrite + flush.
      await writeThenKill(s, `
h = connect("${s.uri()}")
h.pwrite(b"\\x11" * 300000, 123457)
h.flush()
`);
      s = await serve(env, args);
      // 2. Random writes, each with FUA; the model is replayed from the same seed afterwards.
      const fuaWrites = `
r = random.Random(7)
writes = [(r.randrange(0, 60 << 20), r.randrange(1, 70000), r.randrange(1, 256)) for i in range(200)]
`;
      await writeThenKill(s, `${fuaWrites}
h = connect("${s.uri()}")
assert h.pread(300000, 123457) == b"\\x11" * 300000, "flushed write lost"
for off, n, b in writes:
    h.pwrite(bytes([b]) * n, off, nbd.CMD_FLAG_FUA)
`);
      s = await serve(env, args);
      // 3. Flushed data A, then unflushed B over half of it and over fresh space.
      await writeThenKill(s, `${fuaWrites}
h = connect("${s.uri()}")
model = bytearray(h.pread(32 << 20, 0) + h.pread(32 << 20, 32 << 20))
expect = bytearray(open("${join(dir, 'a.base')}", "rb").read()) + bytearray(63 << 20)
expect[123457:123457 + 300000] = b"\\x11" * 300000
for off, n, b in writes:
    expect[off:off + n] = bytes([b]) * n
assert model == expect, "FUA writes lost or wrong"
h.pwrite(b"\\xaa" * (1 << 20), 8 << 20)
h.flush()
h.pwrite(b"\\xbb" * (1 << 20), (8 << 20) + (512 << 10))
h.pwrite(b"\\xcc" * (1 << 20), 62 << 20)
`);
      s = await serve(env, args);
      await nbdsh(`${prelude}
h = connect("${s.uri()}")
a = h.pread(1 << 20, 8 << 20)
assert a[:512 << 10] == b"\\xaa" * (512 << 10), "flushed data damaged"
for at in range(512 << 10, 1 << 20, 512):
    assert a[at:at + 512] in (b"\\xaa" * 512, b"\\xbb" * 512), "sector at %d is neither old nor new" % at
c = h.pread(1 << 20, 62 << 20)
for at in range(0, 1 << 20, 512):
    assert c[at:at + 512] in (bytes(512), b"\\xcc" * 512), "unflushed sector at %d is garbage" % at
`);
    } finally {
      await s.proc.stop();
    }
  });
});

test('fio: random 4k writes through serve into an upper verify with crc32c', async () => {
  if (!(await requireTools('fio'))) return;
  await withImage(async (dir, env) => {
    const s = await serve(env, ['a:v1', '--upper', join(dir, 'upper'), '--socket', join(dir, 'f.sock')]);
    try {
      const { stdout } = await run('fio', [
        '--name=verify', '--ioengine=nbd', `--uri=${s.uri()}`, '--rw=randwrite', '--bs=4k', '--iodepth=16',
        '--size=32M', '--verify=crc32c', '--verify_fatal=1', '--do_verify=1', '--output-format=json',
      ]);
      const job = JSON.parse(stdout.slice(stdout.indexOf('{'))).jobs[0];
      assert.is(job.error, 0);
      assert.ok(job.write.io_bytes >= 32 * MiB);
      assert.ok(job.read.io_bytes >= 32 * MiB, 'verify pass read everything back');
    } finally {
      await s.proc.stop();
    }
  });
});

test('commit keeps trimmed and zeroed ranges of base data as zeroes', async () => {
  if (!(await requireTools('nbdsh', 'nbdinfo'))) return;
  await withImage(async (dir, env) => {
    const upper = join(dir, 'upper');
    const s = await serve(env, ['a:v1', '--upper', upper, '--socket', join(dir, 't.sock')]);
    try {
      await nbdsh(`${prelude}
h = connect("${s.uri()}")
h.trim(256 << 10, 64 << 10)
h.zero(128 << 10, 512 << 10)
h.flush()
`);
    } finally {
      await s.proc.stop();
    }
    const c = await lazybd(['commit', upper, 'a:v2'], env);
    assert.is(c.status, 0, c.stderr);
    const v2 = await serve(env, ['a:v2', '--socket', join(dir, 'v2.sock')]);
    try {
      await nbdsh(`${prelude}
base = open("${join(dir, 'a.base')}", "rb").read()
h = connect("${v2.uri()}")
assert h.pread(256 << 10, 64 << 10) == bytes(256 << 10), "trimmed range not zero"
assert h.pread(128 << 10, 512 << 10) == bytes(128 << 10), "zeroed range not zero"
assert h.pread(4096, (64 << 10) - 4096) == base[(60 << 10):(64 << 10)]
assert h.pread(4096, 640 << 10) == base[(640 << 10):(644 << 10)]
`);
      const map = await blockMap(v2.uri());
      assert.ok(typeOver(map, 64 << 10, 256 << 10) & 2, 'trimmed range reported as zero');
      assert.ok(typeOver(map, 512 << 10, 128 << 10) & 2, 'zeroed range reported as zero');
      assert.is(typeOver(map, 0, 60 << 10), 0, 'base data before stays data');
    } finally {
      await v2.proc.stop();
    }
  });
});

test('trim and write-zeroes through nbdsh give the disk space of the upper back (stat blocks), on a flush; pure keeps it, reads zero alike', async () => {
  if (!(await requireTools('nbdsh'))) return;
  await withImage(async (dir, env) => {
    const backends = fileIoBackend.kind === 'native' ? (['native', 'pure'] as const) : (['pure'] as const);
    for (const backend of backends) {
      const upper = join(dir, `upper-${backend}`);
      const data = join(upper, 'data');
      const blocks = async () => (await stat(data)).blocks * 512;
      const s = await serve({ ...env, ...(backend === 'pure' ? { LAZYBD_NATIVE: '0' } : {}) }, ['a:v1', '--upper', upper, '--socket', join(dir, `${backend}.sock`)]);
      try {
        await nbdsh(`${prelude}
h = connect("${s.uri()}")
h.pwrite(bytes([0x5a]) * (16 << 20), 4 << 20)
h.flush()
`);
        const written = await blocks();
        assert.ok(written >= 16 * MiB, `${backend}: ${written} bytes allocated after 16 MiB of writes`);
        await nbdsh(`${prelude}
h = connect("${s.uri()}")
h.trim((4 << 20) + 100, 8 << 20)
h.zero(6 << 20, 12 << 20)
h.pwrite(bytes([0x33]) * 4096, 9 << 20)
h.flush()
assert h.pread(4 << 20, 4 << 20) == bytes([0x5a]) * (4 << 20), "data before the trim"
assert h.pread(1 << 20, 8 << 20) == bytes(1 << 20), "trimmed"
assert h.pread(4096, 9 << 20) == bytes([0x33]) * 4096, "rewritten after the trim"
assert h.pread((9 << 20) - 4096, (9 << 20) + 4096) == bytes((9 << 20) - 4096), "trimmed and zeroed"
assert h.pread(2 << 20, 18 << 20) == bytes([0x5a]) * (2 << 20), "data after the zeroed range"
`);
        const freed = written - (await blocks());
        // 10 MiB trimmed or zeroed, one 4 KiB block rewritten; the last 100 bytes of the trim are no whole sector.
        if (backend === 'native') assert.is(freed, 10 * MiB - 4096, `native: freed ${freed} bytes`);
        else assert.is(freed, 0, `pure: freed ${freed} bytes`);
      } finally {
        await s.proc.stop();
      }
      // The space stays free and the bytes stay zero across a restart.
      const again = await serve(env, ['a:v1', '--upper', upper, '--socket', join(dir, `${backend}2.sock`)]);
      try {
        await nbdsh(`${prelude}
h = connect("${again.uri()}")
assert h.pread(1 << 20, 8 << 20) == bytes(1 << 20)
assert h.pread(4096, 9 << 20) == bytes([0x33]) * 4096
`);
      } finally {
        await again.proc.stop();
      }
    }
  });
});

test('commit: the same upper contents over the same base give the same layer, whatever the write history', async () => {
  if (!(await requireTools('nbdsh'))) return;
  await withImage(async (dir, env) => {
    const once = `
h.pwrite(bytes([7]) * (192 << 10), 2 << 20)
h.pwrite(bytes([9]) * 4096, (5 << 20) + 4096)
h.zero(256 << 10, 8 << 20)
h.trim(64 << 10, 128 << 10)`;
    // The same end state by another road: pieces out of order, overwritten data, split zeroing.
    const roundabout = `
h.pwrite(bytes([3]) * 4096, (5 << 20) + 4096)
h.pwrite(bytes([7]) * (64 << 10), (2 << 20) + (128 << 10))
h.pwrite(bytes([7]) * (64 << 10), 2 << 20)
h.pwrite(bytes([5]) * (64 << 10), 128 << 10)
h.zero(128 << 10, (8 << 20) + (128 << 10))
h.pwrite(bytes([9]) * 4096, (5 << 20) + 4096)
h.trim(64 << 10, 128 << 10)
h.zero(128 << 10, 8 << 20)
h.pwrite(bytes([7]) * (64 << 10), (2 << 20) + (64 << 10))`;
    const oneByteOff = once.replace('bytes([9])', 'bytes([8])');
    const commits = [];
    for (const [i, writes] of [once, roundabout, oneByteOff].entries()) {
      const upper = join(dir, `upper${i}`);
      const s = await serve(env, ['a:v1', '--upper', upper, '--socket', join(dir, `r${i}.sock`)]);
      try {
        await nbdsh(`${prelude}\nh = connect("${s.uri()}")${writes}\nh.flush()\n`);
      } finally {
        await s.proc.stop();
      }
      const c = await lazybd(['commit', upper, `a:c${i}`, '--json'], { ...env, SOURCE_DATE_EPOCH: '1700000000' });
      assert.is(c.status, 0, c.stderr);
      commits.push(JSON.parse(c.stdout) as { layer: string; manifest: string; dataBytes: number });
    }
    const [a, b, c] = commits as [(typeof commits)[0], (typeof commits)[0], (typeof commits)[0]];
    assert.ok(a.dataBytes >= 196 << 10, 'the writes are in the layer');
    assert.is(b.layer, a.layer, 'same contents, same layer');
    assert.is(b.manifest, a.manifest, 'same layers and SOURCE_DATE_EPOCH, same manifest');
    assert.is.not(c.layer, a.layer, 'one byte different, another layer');
  });
});

test.run();
