import { createHash } from 'node:crypto';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { LAZYBD_BIN, lazybd, withTempDir, type CliResult } from './support/cli.js';
import { spawnOwned, waitFor } from './support/processes.js';
import { requireTools } from './support/tools.js';

const run = promisify(execFile);
const VIRTUAL = 64 << 20;
const sha = async (path: string) => createHash('sha256').update(await readFile(path)).digest('hex');
const qemuIo = (image: string, format: string, cmd: string) => run('qemu-io', ['-f', format, '-c', cmd, image]);

/** A qcow2 over a qcow2 backing file: data in both, some of the base overwritten, the rest never written. */
async function chain(dir: string): Promise<string> {
  const base = join(dir, 'base.qcow2');
  const top = join(dir, 'top.qcow2');
  await run('qemu-img', ['create', '-q', '-f', 'qcow2', base, String(VIRTUAL)]);
  await qemuIo(base, 'qcow2', 'write -P 0xab 1M 3M');
  await qemuIo(base, 'qcow2', 'write -P 0x11 40M 1M');
  await run('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', base, '-F', 'qcow2', top]);
  await qemuIo(top, 'qcow2', 'write -P 0xcd 2M 1M');
  await qemuIo(top, 'qcow2', 'write -P 0x5a 60M 12345');
  return top;
}

/** Bytes qemu-img map says hold data (the whole chain). */
async function mappedData(image: string): Promise<number> {
  const { stdout } = await run('qemu-img', ['map', '--output=json', image]);
  return (JSON.parse(stdout) as { length: number; data: boolean }[]).filter((e) => e.data).reduce((n, e) => n + e.length, 0);
}

/** A store, the chain, and `qemu-img convert -O raw` of it (the bytes an import must give back). */
async function fixture(dir: string) {
  const env = { LAZYBD_STORE: join(dir, 'store') };
  const top = await chain(dir);
  const reference = join(dir, 'ref.raw');
  await run('qemu-img', ['convert', '-O', 'raw', top, reference]);
  return { env, top, reference };
}

const ok = (r: CliResult, what: string) => assert.is(r.status, 0, `${what}: ${r.stderr}`);

/** Imports `source`, exports it again, and checks the export is byte-identical to `reference`. */
async function importMatches(dir: string, env: NodeJS.ProcessEnv, source: string, ref: string, reference: string, extra: string[] = []) {
  const i = await lazybd(['import', source, ref, '--json', ...extra], env);
  ok(i, `import ${source}`);
  const out = join(dir, `${ref.replace(':', '-')}.out`);
  ok(await lazybd(['export', ref, out, '--json'], env), `export ${ref}`);
  assert.is((await stat(out)).size, (await stat(reference)).size, `${source}: size`);
  assert.is(await sha(out), await sha(reference), `${source}: bytes differ from qemu-img convert -O raw`);
  return JSON.parse(i.stdout) as { format: string; virtualSize: number; dataBytes: number };
}

/** Nothing left behind: no image tagged, no temp file in the store. */
async function assertClean(env: { LAZYBD_STORE: string }, what: string) {
  const images = await lazybd(['images', '--json'], env);
  ok(images, 'images');
  assert.equal(JSON.parse(images.stdout), [], `${what}: an image was tagged`);
  assert.equal(await readdir(join(env.LAZYBD_STORE, 'tmp')), [], `${what}: temp files left in the store`);
}

test('import: a qcow2 with a backing file flattens byte-identical to qemu-img convert, holes stay holes', async () => {
  if (!(await requireTools('qemu-img', 'qemu-io'))) return;
  await withTempDir(async (dir) => {
    const { env, top, reference } = await fixture(dir);
    const r = await importMatches(dir, env, top, 'chain:v1', reference);
    assert.is(r.format, 'qcow2');
    assert.is(r.virtualSize, VIRTUAL);
    const inspect = await lazybd(['inspect', 'chain:v1', '--json'], env);
    ok(inspect, 'inspect');
    const report = JSON.parse(inspect.stdout) as { allocatedBytes: number; layers: unknown[] };
    assert.is(report.layers.length, 1, 'the chain is one layer');
    const mapped = await mappedData(top);
    // qemu-img map counts whole clusters (64 KiB); the layer keeps 4 KiB granules of non-zero data.
    assert.ok(report.allocatedBytes <= mapped && report.allocatedBytes >= mapped - 2 * 65536, `allocated ${report.allocatedBytes} vs mapped ${mapped}`);
    assert.ok(report.allocatedBytes < VIRTUAL / 10, 'holes stay holes');
    assert.equal(await readdir(join(env.LAZYBD_STORE, 'tmp')), [], 'temp raw removed');
  });
});

test('import: vmdk, vhdx and raw inputs (probed, and raw forced with --format)', async () => {
  if (!(await requireTools('qemu-img', 'qemu-io'))) return;
  await withTempDir(async (dir) => {
    const { env, top, reference } = await fixture(dir);
    for (const format of ['vmdk', 'vhdx']) {
      const image = join(dir, `disk.${format}`);
      await run('qemu-img', ['convert', '-O', format, top, image]);
      const r = await importMatches(dir, env, image, `${format}:v1`, reference);
      assert.is(r.format, format);
    }
    assert.is((await importMatches(dir, env, reference, 'raw:v1', reference, ['--format', 'raw'])).format, 'raw');
    assert.is((await importMatches(dir, env, reference, 'raw:v2', reference, ['--chunk-size', '16384'])).format, 'raw');
  });
});

test('import: an NBD URI (qemu-nbd --read-only on a unix socket)', async () => {
  if (!(await requireTools('qemu-img', 'qemu-io', 'qemu-nbd'))) return;
  await withTempDir(async (dir) => {
    const { env, top, reference } = await fixture(dir);
    const socket = join(dir, 'nbd.sock');
    // --persistent: import connects twice (info, then convert).
    const server = spawnOwned('qemu-nbd', ['--read-only', '--persistent', '-f', 'qcow2', '-k', socket, top]);
    try {
      await waitFor(() => stat(socket).then(() => true, () => false), 10_000, 'qemu-nbd socket');
      const r = await importMatches(dir, env, `nbd+unix:///?socket=${socket}`, 'nbd:v1', reference);
      assert.is(r.format, 'raw');
      assert.is(r.virtualSize, VIRTUAL);
      assert.ok(r.dataBytes < VIRTUAL / 10, 'zero blocks served over NBD become holes');
    } finally {
      await server.stop();
    }
  });
});

test('import: errors have codes and exit statuses, and leave the store clean', async () => {
  if (!(await requireTools('qemu-img'))) return;
  await withTempDir(async (dir) => {
    const env = { LAZYBD_STORE: join(dir, 'store') };
    ok(await lazybd(['images'], env), 'store created');
    const expect = async (args: string[], status: number, code: string, extraEnv: NodeJS.ProcessEnv = {}) => {
      const r = await lazybd(['import', ...args, 'x:v1', '--json'], { ...env, ...extraEnv });
      assert.is(r.status, status, `${args.join(' ')}: ${r.stderr}`);
      assert.is((JSON.parse(r.stdout) as { error: { code: string } }).error.code, code, r.stdout);
      await assertClean(env, args.join(' '));
    };
    await expect([join(dir, 'absent.qcow2')], 2, 'E_IMPORT_NOT_FOUND');
    // qcow2 magic, garbage after it: probed as qcow2, unreadable.
    const corrupt = join(dir, 'corrupt.qcow2');
    await writeFile(corrupt, Buffer.concat([Buffer.from('QFI\xfb', 'latin1'), Buffer.alloc(4096, 0xee)]));
    await expect([corrupt], 3, 'E_IMPORT_MALFORMED');
    // A header info accepts, data convert cannot read (after it created the temp raw):
    // the first L1 entry points at an unaligned L2 table.
    const full = join(dir, 'full.qcow2');
    await run('qemu-img', ['create', '-q', '-f', 'qcow2', full, String(VIRTUAL)]);
    await run('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0x77 0 8M', full]);
    const bytes = await readFile(full);
    const broken = join(dir, 'broken-l1.qcow2');
    bytes.writeBigUInt64BE(0x8000000000000201n, Number(bytes.readBigUInt64BE(40)));
    await writeFile(broken, bytes);
    assert.is(JSON.parse((await run('qemu-img', ['info', '--output=json', broken])).stdout).format, 'qcow2', 'info still reads it');
    await expect([broken], 3, 'E_IMPORT_MALFORMED');
    const text = join(dir, 'notes.txt');
    await writeFile(text, 'not a disk image\n');
    await expect([text, '--format', 'vmdk'], 3, 'E_IMPORT_MALFORMED');
    const encrypted = join(dir, 'enc.qcow2');
    await run('qemu-img', ['create', '-q', '-f', 'qcow2', '--object', 'secret,id=s0,data=pw', '-o', 'encrypt.format=aes,encrypt.key-secret=s0', encrypted, '16M']);
    await expect([encrypted], 3, 'E_IMPORT_ENCRYPTED');
    await expect([full], 1, 'E_QEMU_IMG_MISSING', { PATH: join(dir, 'no-bin') });
    await expect([`nbd+unix:///?socket=${join(dir, 'absent.sock')}`], 3, 'E_IMPORT_MALFORMED');
  });
});

test('import: SIGTERM during the convert removes the temp raw and tags nothing', async () => {
  if (!(await requireTools('qemu-img', 'nbdkit'))) return;
  await withTempDir(async (dir) => {
    const env = { LAZYBD_STORE: join(dir, 'store') };
    const socket = join(dir, 'slow.sock');
    // Every read takes a second: the convert is surely still running when the signal comes.
    const server = spawnOwned('nbdkit', ['-f', '-U', socket, '--filter=delay', 'pattern', '64M', 'rdelay=1']);
    try {
      await waitFor(() => stat(socket).then(() => true, () => false), 10_000, 'nbdkit socket');
      const child = spawn(process.execPath, [LAZYBD_BIN, 'import', `nbd+unix:///?socket=${socket}`, 'slow:v1', '--json'], { env: { ...process.env, ...env }, stdio: 'ignore' });
      const exited = once(child, 'exit');
      const tmp = join(env.LAZYBD_STORE, 'tmp');
      try {
        await waitFor(async () => (await readdir(tmp).catch(() => [])).some((n) => n.startsWith('import-')), 20_000, 'the temp raw');
      } finally {
        child.kill('SIGTERM');
      }
      const [, signal] = (await exited) as [number | null, NodeJS.Signals | null];
      assert.is(signal, 'SIGTERM', 'ends by the signal it got');
      await assertClean(env, 'SIGTERM');
    } finally {
      await server.stop();
    }
  });
});

test.run();
