// A real Debian guest (integration/vm/build-boot-image.sh, cached between runs) boots under qemu
// TCG from lazybd exports of a registry image: over NBD as -drive and as -blockdev, and from a
// block device (nbdfuse + losetup). Every boot must reach the guest's marker, which reports what
// its disk holds, so writes of one boot are seen by the next and never by another disk.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { attachBlockDevice } from './vm/block-device.js';
import { remoteBytes, ServeUpperDisks, type VmDisk } from './vm/disk-service.js';
import { localHost } from './vm/lazybd-host.js';
import { canBootVms, publishBootImage, type PublishedBootImage } from './vm/published-boot-image.js';
import { bootVm, VmBootError } from './vm/qemu-vm.js';
import { spawnOwned, waitFor } from './support/processes.js';

const run = promisify(execFile);

/** A TCG boot takes 20-40 s on 2 idle cores; a loaded machine may double it. */
const BOOT_TIMEOUT_MS = 240_000;

interface Ctx extends PublishedBootImage {
  dir: string;
  disks?: ServeUpperDisks;
  disk?: VmDisk;
  /** Remote bytes after the first boot. */
  firstBootBytes?: number;
}

const vm = suite<Ctx>('vm-boot');
let ready = false;

vm.before(async (c) => {
  if (!(await canBootVms('nbdfuse', 'losetup'))) return;
  c.dir = await mkdtemp(join(tmpdir(), 'lazybd-vm-'));
  Object.assign(c, await publishBootImage(c.dir));
  ready = true;
});

vm.after(async (c) => {
  await c.disks?.stop();
  await c.registry?.stop();
  if (c.dir) await rm(c.dir, { recursive: true, force: true });
});

vm('boots from lazybd serve of a registry ref over NBD (-drive nbd+unix://), fetching a fraction of the image, and writes its disk', async (c) => {
  if (!ready) return;
  c.disks = new ServeUpperDisks({ host: localHost, ref: c.remote, dir: join(c.dir, 'disks'), serveArgs: ['--plain-http'], timeoutMs: 60_000 });
  c.disk = await c.disks.add('vm0');
  const boot = await bootVm({ image: c.image, drive: { kind: 'drive', file: c.disk.uri, format: 'raw' }, append: ['lazybd.write=first'], timeoutMs: BOOT_TIMEOUT_MS });
  assert.equal([boot.marker.boots, boot.marker.note], [1, 'first'], boot.serial.slice(-2000));
  const fetched = await c.disks.sourceBytes();
  c.firstBootBytes = remoteBytes(fetched);
  // The guest reads its init, libraries and modules: megabytes, never the whole image.
  assert.ok(c.firstBootBytes > 4 << 20 && c.firstBootBytes < 0.5 * c.dataBytes, `fetched ${JSON.stringify(fetched)} of ${c.dataBytes}`);
  assert.equal(Object.keys(fetched), ['registry'], JSON.stringify(fetched));
});

vm('boots again via -blockdev driver=nbd: the first boot\'s write is on the disk, the chunks come from the cache', async (c) => {
  if (!ready || !c.disk) return;
  const boot = await bootVm({ image: c.image, drive: { kind: 'nbd-blockdev', socket: c.disk.socket, exportName: c.disk.exportName }, timeoutMs: BOOT_TIMEOUT_MS });
  assert.equal([boot.marker.boots, boot.marker.note], [2, 'first'], boot.serial.slice(-2000));
  const again = remoteBytes(await c.disks!.sourceBytes()) - c.firstBootBytes!;
  assert.ok(again < 0.1 * c.firstBootBytes!, `the second boot fetched ${again} more bytes (the first ${c.firstBootBytes})`);
});

vm('boots from a block device: the export through nbdfuse and a loop device', async (c) => {
  if (!ready || !c.disk) return;
  const attached = await attachBlockDevice(c.disk.uri, join(c.dir, 'blockdev'));
  try {
    const boot = await bootVm({ image: c.image, drive: { kind: 'drive', file: attached.device, format: 'raw' }, append: ['lazybd.write=third'], timeoutMs: BOOT_TIMEOUT_MS });
    assert.equal([boot.marker.boots, boot.marker.note], [3, 'third'], boot.serial.slice(-2000));
  } finally {
    await attached.detach();
  }
});

/** Whether `pid` runs (a zombie has already exited: only its parent's reaping is left). */
async function runningProcess(pid: number): Promise<boolean> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  return stat !== '' && stat[stat.lastIndexOf(')') + 2] !== 'Z';
}

/** A qcow2 overlay on the cached raw disk: a guest disk of its own that never writes the cache. */
async function overlay(c: Ctx, name: string): Promise<string> {
  const file = join(c.dir, `${name}.qcow2`);
  await run('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', c.image.disk, '-F', 'raw', file]);
  return file;
}

vm('a guest that does not reach its marker in time is killed and reported with its serial output', async (c) => {
  if (!ready) return;
  const t0 = performance.now();
  const err = await bootVm({ image: c.image, drive: { kind: 'drive', file: await overlay(c, 'late'), format: 'qcow2' }, append: ['loglevel=7'], timeoutMs: 8000 }).then(() => undefined, (e: Error) => e);
  assert.instance(err, VmBootError);
  assert.match(err!.message, /printed no boot marker \(stopped at the 8 s limit\)/);
  assert.match(err!.message, /\[ *\d+\.\d+\] /, 'the kernel messages so far are in the message');
  assert.ok(performance.now() - t0 < 20_000, 'killed at the timeout');
});

vm('a VM dies with the process that started it, even one killed with SIGKILL', async (c) => {
  if (!ready) return;
  const disk = await overlay(c, 'orphan');
  const script = `import(${JSON.stringify(join(process.cwd(), 'dist/integration/vm/qemu-vm.js'))}).then((m) => m.bootVm({ image: ${JSON.stringify(c.image)}, drive: { kind: 'drive', file: ${JSON.stringify(disk)}, format: 'qcow2' }, timeoutMs: 120000 }))`;
  const parent = spawnOwned(process.execPath, ['-e', script]);
  let qemu = 0;
  await waitFor(async () => {
    qemu = Number((await run('pgrep', ['-P', String(parent.child.pid), 'qemu-system']).catch(() => ({ stdout: '' }))).stdout.trim().split('\n')[0]);
    return qemu > 0;
  }, 20_000, 'qemu to start');
  parent.child.kill('SIGKILL');
  await waitFor(async () => !(await runningProcess(qemu)), 10_000, `qemu ${qemu} to die with its parent`);
});

vm.run();
