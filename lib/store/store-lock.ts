import { open, readFile, rm } from 'node:fs/promises';
import { StoreLockTimeoutError } from './errors.js';
import { isProcessAlive } from './process-alive.js';

const POLL_MS = 15;

async function holderOf(path: string): Promise<number> {
  return Number(await readFile(path, 'utf8').catch(() => ''));
}

/**
 * Removes a lock whose holder died. Two waiters may both see it dead; the `.steal`
 * lock makes only one remove it, so nobody deletes a lock just taken by the other.
 */
async function removeIfStale(path: string): Promise<boolean> {
  const holder = await holderOf(path);
  // An empty file is a holder between create and write: wait for it, never steal.
  if (!(holder > 0) || isProcessAlive(holder)) return false;
  let steal;
  try {
    steal = await open(`${path}.steal`, 'wx');
  } catch {
    return false;
  }
  try {
    if ((await holderOf(path)) === holder) await rm(path, { force: true });
  } finally {
    await steal.close();
    await rm(`${path}.steal`, { force: true });
  }
  return true;
}

/**
 * Takes the lock file if it is free (or its holder died); returns its release, or
 * null when a live process holds it.
 */
export async function tryLock(path: string): Promise<(() => Promise<void>) | null> {
  for (;;) {
    try {
      const h = await open(path, 'wx');
      await h.writeFile(String(process.pid));
      await h.close();
      return () => rm(path, { force: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      if (!(await removeIfStale(path))) return null;
    }
  }
}

/**
 * Runs `fn` holding an exclusive lock file (O_EXCL create), waiting for it up to
 * `timeoutMs`. A lock left by a process that died is taken over, so a SIGKILLed
 * `lazybd` never wedges the store.
 */
export async function withLock<T>(path: string, fn: () => Promise<T>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let release;
  while (!(release = await tryLock(path))) {
    if (Date.now() > deadline) throw new StoreLockTimeoutError(path);
    await new Promise((r) => setTimeout(r, POLL_MS + Math.random() * POLL_MS));
  }
  try {
    return await fn();
  } finally {
    await release();
  }
}
