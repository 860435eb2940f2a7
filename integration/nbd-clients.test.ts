// lazybd's NBD server against real clients: nbdinfo, nbdcopy, qemu-img, qemu-io, fio.
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { requireTools } from './support/tools.js';
import { pattern, run, serve } from './nbd-fixture.js';

const MiB = 1024 * 1024;
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

test('nbdinfo: export details, --list of several exports, --map of holes', async () => {
  if (!(await requireTools('nbdinfo'))) return;
  // Data at [0,64k) and [1M, 1M+8k); the rest reads as zeroes and is reported as holes.
  const content = Buffer.alloc(MiB + 8192);
  pattern(65536, 7).copy(content, 0);
  pattern(8192, 8).copy(content, MiB);
  const s = await serve([
    { name: 'disk', description: 'scratch disk', size: 4 * MiB, zeroScan: true, content },
    { name: 'ro', description: 'read-only copy', size: MiB, readOnly: true },
  ]);
  try {
    const info = JSON.parse((await run('nbdinfo', ['--json', s.uri('disk')])).stdout);
    const e = info.exports[0];
    assert.is(info.protocol, 'newstyle-fixed');
    assert.is(info.TLS, false);
    assert.is(e['export-size'], 4 * MiB);
    assert.is(e['is_read_only'], false);
    assert.is(e['block_size_minimum'], 1);
    assert.is(e['block_size_preferred'], 4096);
    assert.is(e['block_size_maximum'], 32 * MiB);
    for (const can of ['can_flush', 'can_fua', 'can_trim', 'can_zero', 'can_fast_zero', 'can_cache', 'can_df', 'can_multi_conn']) {
      assert.is(e[can], true, can);
    }
    assert.equal(e.contexts, ['base:allocation']);

    const list = JSON.parse((await run('nbdinfo', ['--json', '--list', s.uri('')])).stdout);
    const byName = Object.fromEntries(list.exports.map((x: { 'export-name': string }) => [x['export-name'], x]));
    assert.equal(Object.keys(byName).sort(), ['disk', 'ro']);
    assert.is(byName.ro.description, 'read-only copy');
    assert.is(byName.ro['is_read_only'], true);
    assert.is(byName.ro['can_trim'], false);
    assert.is(byName.disk['export-size'], 4 * MiB);

    // Exports come and go at run time.
    s.server.addExport({ name: 'late', device: s.devices.get('ro')! });
    const names = async () =>
      JSON.parse((await run('nbdinfo', ['--json', '--list', s.uri('')])).stdout).exports.map((x: { 'export-name': string }) => x['export-name']).sort();
    assert.equal(await names(), ['disk', 'late', 'ro']);
    assert.ok(s.server.removeExport('late'));
    assert.equal(await names(), ['disk', 'ro']);
    const gone = await run('nbdinfo', [s.uri('late')]).then(() => false, () => true);
    assert.ok(gone, 'a removed export cannot be opened');

    const map = JSON.parse((await run('nbdinfo', ['--json', '--map', s.uri('disk')])).stdout) as {
      offset: number;
      length: number;
      type: number;
    }[];
    const expected = [
      { offset: 0, length: 65536, type: 0 },
      { offset: 65536, length: MiB - 65536, type: 3 },
      { offset: MiB, length: 8192, type: 0 },
      { offset: MiB + 8192, length: 3 * MiB - 8192, type: 3 },
    ];
    assert.equal(map.map(({ offset, length, type }) => ({ offset, length, type })), expected);
  } finally {
    await s.stop();
  }
});

test('nbdcopy and qemu-img: byte-exact copies both ways', async () => {
  if (!(await requireTools('nbdcopy', 'qemu-img'))) return;
  const data = pattern(8 * MiB, 42);
  const s = await serve([{ name: 'img', size: 8 * MiB, content: data }]);
  try {
    const copy = join(s.dir, 'copy.raw');
    await run('nbdcopy', [s.uri('img'), copy]);
    assert.is(sha256(await readFile(copy)), sha256(data));

    const info = JSON.parse((await run('qemu-img', ['info', '--output=json', s.uri('img')])).stdout);
    assert.is(info['virtual-size'], 8 * MiB);
    await run('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', copy, s.uri('img')]);

    // Write a new image through the server with qemu-img convert, then read the file directly.
    const other = pattern(8 * MiB, 99);
    const src = join(s.dir, 'src.raw');
    await writeFile(src, other);
    await run('qemu-img', ['convert', '-n', '-f', 'raw', '-O', 'raw', src, s.uri('img')]);
    assert.is(sha256(await readFile(s.files.get('img')!)), sha256(other));
    // And a difference is detected.
    const differs = await run('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', copy, s.uri('img')]).then(
      () => false,
      (err: { code?: number }) => err.code === 1,
    );
    assert.ok(differs, 'qemu-img compare reports the images differ');
  } finally {
    await s.stop();
  }
});

test('qemu-io: write/read patterns, zero, discard', async () => {
  if (!(await requireTools('qemu-io'))) return;
  const s = await serve([{ name: 'q', size: 16 * MiB }]);
  try {
    // Resolves to qemu-io's output whether or not it exited non-zero (it does on a pattern mismatch).
    const io = (...cmds: string[]) =>
      run('qemu-io', ['-f', 'raw', ...cmds.flatMap((c) => ['-c', c]), s.uri('q')]).then(
        (r) => r.stdout,
        (err: { stdout?: string }) => `${err.stdout ?? ''} (qemu-io failed)`,
      );
    await io('write -P 0xab 0 64k', 'write -P 0xcd 1M 4k', 'write -P 0x11 200001 777');
    const out = await io('read -P 0xab 0 64k', 'read -P 0xcd 1M 4k', 'read -P 0x11 200001 777');
    assert.not.match(out, /Pattern verification failed|qemu-io failed/);
    const file = await readFile(s.files.get('q')!);
    assert.ok(file.subarray(0, 65536).every((b) => b === 0xab));
    assert.ok(file.subarray(200001, 200001 + 777).every((b) => b === 0x11));
    assert.is(file[200000], 0);
    assert.ok(file.subarray(MiB, MiB + 4096).every((b) => b === 0xcd));
    // A wrong pattern is reported (the check can fail).
    assert.match(await io('read -P 0xcd 0 4k'), /Pattern verification failed/);
    await io('write -z 0 8k', 'discard 1M 4k');
    const after = await readFile(s.files.get('q')!);
    assert.ok(after.subarray(0, 8192).every((b) => b === 0));
    assert.ok(after.subarray(MiB, MiB + 4096).every((b) => b === 0));
    assert.ok(after.subarray(8192, 65536).every((b) => b === 0xab));
  } finally {
    await s.stop();
  }
});

test('fio: random writes at QD16 verified with crc32c', async () => {
  if (!(await requireTools('fio'))) return;
  const s = await serve([{ name: 'f', size: 16 * MiB }]);
  try {
    const { stdout } = await run('fio', [
      '--name=verify',
      '--ioengine=nbd',
      `--uri=${s.uri('f')}`,
      '--rw=randwrite',
      '--bsrange=512-64k',
      '--iodepth=16',
      '--size=16M',
      '--verify=crc32c',
      '--verify_fatal=1',
      '--do_verify=1',
      '--output-format=json',
    ]);
    const result = JSON.parse(stdout.slice(stdout.indexOf('{')));
    assert.is(result.jobs[0].error, 0);
    assert.ok(result.jobs[0].write.io_bytes >= 16 * MiB);
    assert.ok(result.jobs[0].read.io_bytes >= 16 * MiB, 'verify pass read everything back');
  } finally {
    await s.stop();
  }
});

test.run();
