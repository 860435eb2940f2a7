import { open } from 'node:fs/promises';

/** A rename is durable only once its directory is synced. */
export async function fsyncDir(dir: string): Promise<void> {
  const h = await open(dir, 'r');
  try {
    await h.sync();
  } finally {
    await h.close();
  }
}
