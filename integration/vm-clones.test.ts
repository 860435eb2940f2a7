// Clones on a live daemon as VM disks (issue 11): a guest boots from a clone of a registry image;
// a second clone of the same image boots without the first one's writes and fetches nothing
// remote (the host's chunk cache already holds the boot's working set); the first clone,
// committed, is an image whose own clone boots with the change.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { CloneDisks, remoteBytes } from './vm/disk-service.js';
import { localHost } from './vm/lazybd-host.js';
import { canBootVms, publishBootImage, type PublishedBootImage } from './vm/published-boot-image.js';
import { bootVm } from './vm/qemu-vm.js';

const BOOT_TIMEOUT_MS = 240_000;

interface Ctx extends PublishedBootImage {
  dir: string;
  disks: CloneDisks;
  /** Remote bytes after the first clone's boot. */
  firstBootBytes?: number;
}

const clones = suite<Ctx>('vm-clones');
let ready = false;

clones.before(async (c) => {
  if (!(await canBootVms())) return;
  c.dir = await mkdtemp(join(tmpdir(), 'lazybd-vm-clones-'));
  Object.assign(c, await publishBootImage(c.dir));
  c.disks = new CloneDisks({ host: localHost, ref: c.remote, dir: join(c.dir, 'host'), serveArgs: ['--plain-http'], timeoutMs: 60_000 });
  ready = true;
});

clones.after(async (c) => {
  await c.disks?.stop();
  await c.registry?.stop();
  if (c.dir) await rm(c.dir, { recursive: true, force: true });
});

clones('a VM boots from a clone of a registry image on a live daemon, fetching a fraction of it', async (c) => {
  if (!ready) return;
  const a = await c.disks.add('a');
  assert.match(a.uri, /^nbd\+unix:\/\/\/a\?socket=/);
  const boot = await bootVm({ image: c.image, drive: { kind: 'drive', file: a.uri, format: 'raw' }, append: ['lazybd.write=alpha'], timeoutMs: BOOT_TIMEOUT_MS });
  assert.equal([boot.marker.boots, boot.marker.note], [1, 'alpha'], boot.serial.slice(-2000));
  c.firstBootBytes = remoteBytes(await c.disks.sourceBytes());
  assert.ok(c.firstBootBytes > 4 << 20 && c.firstBootBytes < 0.5 * c.dataBytes, `fetched ${c.firstBootBytes} of ${c.dataBytes}`);
});

clones('a second clone of the image boots fresh (the first one\'s write is not on it) and fetches nothing remote', async (c) => {
  if (!ready || c.firstBootBytes === undefined) return;
  const b = await c.disks.add('b');
  const boot = await bootVm({ image: c.image, drive: { kind: 'nbd-blockdev', socket: b.socket, exportName: b.exportName }, timeoutMs: BOOT_TIMEOUT_MS });
  assert.equal([boot.marker.boots, boot.marker.note], [1, '-'], boot.serial.slice(-2000));
  assert.is(remoteBytes(await c.disks.sourceBytes()), c.firstBootBytes, 'the second boot read only chunks the first had fetched');
});

clones('the first clone committed is an image: a clone of it boots with the first clone\'s write', async (c) => {
  if (!ready || c.firstBootBytes === undefined) return;
  await c.disks.commit('a', 'vm/boot:alpha');
  const d = await c.disks.add('d', 'vm/boot:alpha');
  const boot = await bootVm({ image: c.image, drive: { kind: 'drive', file: d.uri, format: 'raw' }, timeoutMs: BOOT_TIMEOUT_MS });
  assert.equal([boot.marker.boots, boot.marker.note], [2, 'alpha'], boot.serial.slice(-2000));
});

clones.run();
