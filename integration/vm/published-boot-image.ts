// The boot image as the VM tests see it: built (or cached), made a lazybd image and pushed to a
// docker-registry on loopback, so guests boot from a registry ref as users would.
import { join } from 'node:path';
import * as assert from 'uvu/assert';
import { lazybd } from '../support/cli.js';
import { startRegistry, type RegistryServer } from '../support/registry-server.js';
import { requireTools } from '../support/tools.js';
import { bootImage, VM_TOOLS, type BootImage } from './boot-image.js';

export interface PublishedBootImage {
  image: BootImage;
  registry: RegistryServer;
  /** `127.0.0.1:PORT/vm/boot:v1` */
  remote: string;
  /** Bytes of data in the lazybd image (what a full pull would fetch). */
  dataBytes: number;
}

/** Root and the tools, or false (a skip; with CI=true a failure). */
export async function canBootVms(...moreTools: string[]): Promise<boolean> {
  if (process.getuid?.() !== 0) {
    if (process.env.CI === 'true') throw new Error('the VM tests need root (debootstrap, qemu, losetup)');
    console.warn('  (skipping: not root)');
    return false;
  }
  return requireTools(...VM_TOOLS, 'docker-registry', ...moreTools);
}

/** Publishes the boot image from a store under `dir`; the caller stops `registry`. */
export async function publishBootImage(dir: string): Promise<PublishedBootImage> {
  const image = await bootImage();
  const registry = await startRegistry();
  const remote = `${registry.host}/vm/boot:v1`;
  const origin = { LAZYBD_STORE: join(dir, 'origin') };
  const created = await lazybd(['create', image.disk, 'vm/boot:v1', '--json'], origin);
  assert.is(created.status, 0, created.stderr);
  const pushed = await lazybd(['push', 'vm/boot:v1', remote, '--plain-http'], origin);
  assert.is(pushed.status, 0, pushed.stderr);
  return { image, registry, remote, dataBytes: (JSON.parse(created.stdout) as { dataBytes: number }).dataBytes };
}
