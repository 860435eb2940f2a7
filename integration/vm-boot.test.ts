// A real Debian guest (integration/vm/build-boot-image.sh, cached between runs) boots under qemu
// TCG from lazybd exports of a registry image: over NBD as -drive and as -blockdev, and from a
// block device (nbdfuse + losetup). Every boot must reach the guest's marker, which reports what
// its disk holds, so writes of one boot are seen by the next and never by another disk.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { attachBlockDevice } from './vm/block-device.js';
import { remoteBytes, ServeUpperDisks, type VmDisk } from './vm/disk-service.js';
import { localHost } from './vm/lazybd-host.js';
import { canBootVms, publishBootImage, type PublishedBootImage } from './vm/published-boot-image.js';
import { bootVm } from './vm/qemu-vm.js';

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

vm.run();
