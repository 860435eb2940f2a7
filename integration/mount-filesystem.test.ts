// `lazybd mount` / `umount` with a real ext4: files written through the mount land in
// the upper, survive commit, read back intact from the new image; failed mounts leave
// no daemon, fuse mount or loop device behind.
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { lazybd, withTempDir } from './support/cli.js';
import { requireTools } from './support/tools.js';
import { run } from './nbd-fixture.js';

const MiB = 1024 * 1024;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** Mounting needs root, like the tools: skipped locally without it, a failure in CI. */
async function canMount(): Promise<boolean> {
  if (!(await requireTools('nbdfuse', 'fusermount3', 'losetup', 'mount', 'umount', 'mkfs.ext4', 'e2fsck'))) return false;
  if (process.getuid?.() === 0) return true;
  if (process.env.CI === 'true') throw new Error('mount tests need root in CI');
  console.warn('  (skipping: mount tests need root)');
  return false;
}

/** Loop devices, mounts and live processes that mention `marker` (a test's temp dir). */
async function leftovers(marker: string): Promise<string[]> {
  const loops = (await run('losetup', ['-a'])).stdout.split('\n').filter((l) => l.includes(marker));
  const mounts = (await readFile('/proc/mounts', 'utf8')).split('\n').filter((l) => l.includes(marker));
  const procs: string[] = [];
  for (const pid of (await readdir('/proc')).filter((n) => /^\d+$/.test(n))) {
    const [cmdline, stat] = await Promise.all([readFile(`/proc/${pid}/cmdline`, 'utf8'), readFile(`/proc/${pid}/stat`, 'utf8')]).catch(() => ['', '']);
    const zombie = stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
    if (!zombie && cmdline.includes(marker)) procs.push(`pid ${pid}: ${cmdline.replace(/\0/g, ' ')}`);
  }
  return [...loops, ...mounts, ...procs];
}

/** A store with `fs:v1`, an empty 128 MiB ext4, and a mountpoint; mount state kept under the temp dir. */
async function withFilesystemImage(fn: (dir: string, env: NodeJS.ProcessEnv, mnt: string) => Promise<void>): Promise<void> {
  await withTempDir(async (dir) => {
    const env = { LAZYBD_STORE: join(dir, 'store'), XDG_RUNTIME_DIR: join(dir, 'run') };
    const raw = join(dir, 'fs.raw');
    await run('truncate', ['-s', String(128 * MiB), raw]);
    await run('mkfs.ext4', ['-q', '-F', raw]);
    const c = await lazybd(['create', raw, 'fs:v1'], env);
    assert.is(c.status, 0, c.stderr);
    const mnt = join(dir, 'mnt');
    await mkdir(mnt);
    try {
      await fn(dir, env, mnt);
    } finally {
      // Whatever failed, never leave a mount over a directory about to be removed.
      await lazybd(['umount', mnt], env);
    }
  });
}

async function mount(env: NodeJS.ProcessEnv, args: string[]): Promise<{ device: string; readOnly: boolean; daemonPid: number }> {
  const m = await lazybd(['mount', ...args, '--json'], env);
  assert.is(m.status, 0, m.stderr);
  return JSON.parse(m.stdout);
}

async function umount(env: NodeJS.ProcessEnv, mnt: string, dir: string): Promise<void> {
  const u = await lazybd(['umount', mnt], env);
  assert.is(u.status, 0, u.stderr);
  assert.equal(await leftovers(dir), [], 'umount left something behind');
  assert.equal(await readdir(join(dir, 'run', 'lazybd', 'mounts')), [], 'mount state removed');
}

test('filesystem round trip: write through a mount, umount, commit, mount the new image read-only, fsck the export', async () => {
  if (!(await canMount())) return;
  await withFilesystemImage(async (dir, env, mnt) => {
    const upper = join(dir, 'upper');
    const files: Record<string, Buffer> = {
      'hello.txt': Buffer.from('hello from lazybd\n'),
      'deep/er/nested.txt': Buffer.from('nested\n'.repeat(1000)),
      'random.bin': randomBytes(5 * MiB + 123),
    };
    const m = await mount(env, ['fs:v1', mnt, '--upper', upper]);
    assert.match(m.device, /^\/dev\/(loop|nbd)\d+$/);
    assert.is(m.readOnly, false);
    assert.match(await readFile('/proc/mounts', 'utf8'), new RegExp(`${m.device} ${mnt} ext4 rw`));
    for (const [name, data] of Object.entries(files)) {
      await mkdir(join(mnt, name, '..'), { recursive: true });
      await writeFile(join(mnt, name), data);
    }
    // The same image mounted beside it, without the upper, is the untouched base.
    const beside = join(dir, 'beside');
    await mkdir(beside);
    const base = await mount(env, ['fs:v1', beside]);
    try {
      assert.is(base.readOnly, true);
      assert.is.not(base.device, m.device);
      assert.equal((await readdir(beside)).sort(), ['lost+found']);
    } finally {
      const u = await lazybd(['umount', beside], env);
      assert.is(u.status, 0, u.stderr);
    }
    await umount(env, mnt, dir);

    const c = await lazybd(['commit', upper, 'fs:v2'], env);
    assert.is(c.status, 0, c.stderr);
    const ro = await mount(env, ['fs:v2', mnt, '--read-only']);
    assert.is(ro.readOnly, true);
    try {
      for (const [name, data] of Object.entries(files)) assert.is(sha(await readFile(join(mnt, name))), sha(data), name);
      await writeFile(join(mnt, 'new.txt'), 'x').then(
        () => assert.unreachable('write to a read-only mount succeeded'),
        (e: NodeJS.ErrnoException) => assert.is(e.code, 'EROFS'),
      );
    } finally {
      await umount(env, mnt, dir);
    }

    const out = join(dir, 'v2.raw');
    const e = await lazybd(['export', 'fs:v2', out], env);
    assert.is(e.status, 0, e.stderr);
    await run('e2fsck', ['-fn', out]); // throws on a non-zero status: any inconsistency
  });
});

test('failed mounts leave no daemon, fuse mount, loop device or state behind', async () => {
  if (!(await canMount())) return;
  await withFilesystemImage(async (dir, env, mnt) => {
    const upper = join(dir, 'upper');
    const clean = async (what: string) => {
      assert.equal(await leftovers(dir), [], `${what} left something behind`);
      assert.equal(await readdir(join(dir, 'run', 'lazybd', 'mounts')).catch(() => []), [], `${what} left mount state`);
    };

    // Fails at the last step, with daemon, nbdfuse and loop device all set up. (A type
    // name mount does not know at all makes it probe, and the ext4 would mount.)
    const badFs = await lazybd(['mount', 'fs:v1', mnt, '--upper', upper, '--fstype', 'vfat'], env);
    assert.is(badFs.status, 1, badFs.stderr);
    assert.match(badFs.stderr, /mount -t vfat .* failed: .*(unknown filesystem type|wrong fs type).*\(E_MOUNT_FAILED\)/);
    await clean('a bad --fstype');

    // The daemon refuses: the upper is bound to fs:v1 now. Its own code comes through.
    await writeFile(join(dir, 'other.raw'), randomBytes(MiB));
    assert.is((await lazybd(['create', join(dir, 'other.raw'), 'other:v1'], env)).status, 0);
    const mismatch = await lazybd(['mount', 'other:v1', mnt, '--upper', upper], env);
    assert.is(mismatch.status, 2, mismatch.stderr);
    assert.match(mismatch.stderr, /E_UPPER_BASE_MISMATCH/);
    await clean('an upper of another image');

    // Fails before anything starts.
    await writeFile(join(dir, 'file'), '');
    for (const where of [join(dir, 'file'), join(dir, 'missing')]) {
      const notDir = await lazybd(['mount', 'fs:v1', where], env);
      assert.is(notDir.status, 2, notDir.stderr);
      assert.match(notDir.stderr, /E_MOUNTPOINT_INVALID/);
    }
    await clean('a mountpoint that is not a directory');

    const notMounted = await lazybd(['umount', mnt], env);
    assert.is(notMounted.status, 2);
    assert.match(notMounted.stderr, /E_NOT_MOUNTED/);

    // A second mount on the same mountpoint is refused and does not disturb the first.
    await mount(env, ['fs:v1', mnt]);
    const twice = await lazybd(['mount', 'fs:v1', mnt], env);
    assert.is(twice.status, 2);
    assert.match(twice.stderr, /E_ALREADY_MOUNTED/);
    assert.ok((await readdir(mnt)).includes('lost+found'), 'first mount still there');
    await umount(env, mnt, dir);
  });
});

test('umount finishes whatever is left (after a partial teardown by hand, with the daemon SIGKILLed) and stops on a busy filesystem', async () => {
  if (!(await canMount())) return;
  await withFilesystemImage(async (dir, env, mnt) => {
    const upper = join(dir, 'upper');
    // Read-only over an upper: nbdfuse -r, losetup -r, mount -o ro.
    const ro = await mount(env, ['fs:v1', mnt, '--upper', upper, '--read-only']);
    assert.is(ro.readOnly, true);
    assert.match(await readFile('/proc/mounts', 'utf8'), new RegExp(`${ro.device} ${mnt} ext4 ro`));
    await run('umount', [mnt]);
    await run('losetup', ['--detach', ro.device]);
    await umount(env, mnt, dir);

    const rw = await mount(env, ['fs:v1', mnt, '--upper', upper]);
    await writeFile(join(mnt, 'x'), 'x');
    // A busy filesystem stops the teardown before anything under it is touched.
    const busy = await open(join(mnt, 'x'));
    try {
      const refused = await lazybd(['umount', mnt], env);
      assert.is(refused.status, 1, refused.stderr);
      assert.match(refused.stderr, /umount .* failed: .*busy.*\(E_UMOUNT_FAILED\)/);
      assert.is(await busy.readFile('utf8'), 'x', 'still mounted and served');
    } finally {
      await busy.close();
    }
    process.kill(rw.daemonPid, 'SIGKILL');
    await umount(env, mnt, dir);
  });
});

test.run();
