import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { LazybdError } from '../errors.js';
import { tryLock } from '../store/store-lock.js';

/**
 * One process at a time may open an upper (a daemon serving it, or a commit reading it):
 * two writers would interleave journals. A lock left by a killed process is taken over.
 */
export async function lockUpper(dir: string): Promise<() => Promise<void>> {
  await mkdir(dir, { recursive: true });
  const release = await tryLock(join(dir, 'owner.lock'));
  if (!release) throw new LazybdError('E_UPPER_IN_USE', `upper ${dir} is in use by another lazybd process`, { exitStatus: 2 });
  return release;
}
