import { randomBytes } from 'node:crypto';
import { open, rename, unlink, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { fsyncDir } from './fsync-dir.js';

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

/**
 * As writeFileAtomic, and durable: the new contents are synced before the rename and the
 * rename is synced after, so after a crash `path` holds the old file or the new one, never
 * nothing. For state a daemon must get back (its clones).
 */
export async function writeFileDurably(path: string, data: string | Buffer): Promise<void> {
  const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    const h = await open(tmp, 'wx', 0o600);
    try {
      await h.writeFile(data);
      await h.sync();
    } finally {
      await h.close();
    }
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => {});
    throw err;
  }
  await fsyncDir(dirname(path));
}
