import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { LazybdError } from '../errors.js';
import { tryLock } from '../store/store-lock.js';

/**
 * Takes `<dir>/owner.lock` for this process, or fails with `code`: a chunk cache has one
 * owner (it clears temp files and tracks sizes). A lock left by a killed process is taken over.
 */
export async function lockDir(dir: string, code: string, what: string): Promise<() => Promise<void>> {
  await mkdir(dir, { recursive: true });
  const release = await tryLock(join(dir, 'owner.lock'));
  if (!release) throw new LazybdError(code, `${what} ${dir} is in use by another lazybd process`, { exitStatus: 2 });
  return release;
}
