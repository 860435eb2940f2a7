import { constants } from 'node:fs';
import { access, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { MountError } from './errors.js';
import { runTool } from './system-command.js';

// With the kernel nbd module, nbd-client connects a /dev/nbdN straight to the daemon.

/** The kernel path needs both the module's devices and nbd-client; otherwise mount falls back to nbdfuse. */
export async function hasKernelNbd(): Promise<boolean> {
  const exists = (path: string, mode?: number) => access(path, mode).then(() => true, () => false);
  if (!(await exists('/dev/nbd0'))) return false;
  for (const dir of (process.env.PATH ?? '').split(':').filter(Boolean)) if (await exists(join(dir, 'nbd-client'), constants.X_OK)) return true;
  return false;
}

/** A /dev/nbdN no client is connected to (the kernel shows a connected one's pid in sysfs). */
async function freeNbdDevice(): Promise<string> {
  const names = (await readdir('/sys/block')).filter((n) => /^nbd\d+$/.test(n)).sort((a, b) => Number(a.slice(3)) - Number(b.slice(3)));
  for (const name of names) if (!(await connected(`/dev/${name}`))) return `/dev/${name}`;
  throw new MountError('E_MOUNT_FAILED', 'every /dev/nbd* device is in use');
}

const connected = (device: string) => access(`/sys/block/${device.slice(5)}/pid`).then(() => true, () => false);

export async function attachNbd(socket: string, exportName: string): Promise<string> {
  const device = await freeNbdDevice();
  await runTool('nbd-client', ['-unix', socket, '-N', exportName, device]);
  return device;
}

export async function detachNbd(device: string): Promise<void> {
  if (await connected(device)) await runTool('nbd-client', ['-d', device], 'E_UMOUNT_FAILED');
}
