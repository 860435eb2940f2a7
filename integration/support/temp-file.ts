import { mkdtemp, open, rm, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Runs `fn` on a new empty file (opened read-write) in a temp directory, removed afterwards. */
export async function withTempFile<T>(prefix: string, fn: (path: string, handle: FileHandle) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  const path = join(dir, 'f');
  const handle = await open(path, 'w+');
  try {
    return await fn(path, handle);
  } finally {
    await handle.close();
    await rm(dir, { recursive: true, force: true });
  }
}
