// An NBD export as a block device without the kernel nbd module: nbdfuse shows it as a file,
// losetup makes that a /dev/loopN (what `lazybd mount` does before mounting; a VM needs the
// device, not a mounted filesystem). nbdfuse is owned by the test process, so it dies with it.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { attachLoop, detachLoop, nbdfuseArgs, nbdfuseReady, stopNbdfuse } from '../../lib/mount/fuse-loop.js';
import { spawnOwned, waitFor } from '../support/processes.js';

export interface AttachedDevice {
  /** /dev/loopN */
  device: string;
  /** Detaches the loop device and stops nbdfuse. */
  detach(): Promise<void>;
}

export async function attachBlockDevice(uri: string, dir: string): Promise<AttachedDevice> {
  const fuseDir = join(dir, 'fuse');
  await mkdir(fuseDir, { recursive: true });
  const fuse = spawnOwned('nbdfuse', nbdfuseArgs(fuseDir, uri, false));
  const stopFuse = () => stopNbdfuse(fuseDir, fuse.child.pid!);
  try {
    await waitFor(async () => {
      if (fuse.child.exitCode !== null) throw new Error(`nbdfuse exited: ${fuse.output()}`);
      return nbdfuseReady(fuseDir);
    }, 30_000, 'nbdfuse to serve its file');
    const device = await attachLoop(fuseDir, false);
    return {
      device,
      detach: async () => {
        await detachLoop(device, fuseDir);
        await stopFuse();
      },
    };
  } catch (e) {
    await stopFuse().catch(() => undefined);
    await fuse.stop();
    throw e;
  }
}
