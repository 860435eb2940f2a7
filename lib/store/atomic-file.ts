import { randomBytes } from 'node:crypto';
import { rename, unlink, writeFile } from 'node:fs/promises';

/**
 * Replaces `path` with `data` all at once: written beside it under a unique temporary
 * name, then renamed. Readers see the old file or the new one, never a part (concurrent
 * writers of one path each rename a whole file). Without fsync: for caches and state a
 * reader re-checks anyway.
 */
export async function writeFileAtomic(path: string, data: string | Buffer): Promise<void> {
  const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    await writeFile(tmp, data);
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => {});
    throw err;
  }
}
