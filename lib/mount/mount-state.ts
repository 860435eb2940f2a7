import { createHash } from 'node:crypto';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Everything `umount` (or the clean-up of a failed mount) needs to undo a mount,
 * written after each step is set up so even a mount that died half-way can be undone.
 */
export interface MountState {
  ref: string;
  /** Real path of the mountpoint. */
  mountpoint: string;
  readOnly: boolean;
  upperDir?: string;
  daemon?: { pid: number; socket: string; exportName: string; log: string };
  /** nbdfuse exposing the export as the file `<dir>/nbd`. */
  fuse?: { dir: string; pid: number };
  /** Loop device over the fuse file, or a kernel NBD device: what the filesystem is mounted from. */
  loopDevice?: string;
  nbdDevice?: string;
}

const STATE_FILE = 'state.json';

/** Per-user runtime dir when there is one, /run for root, else the temp dir. */
function mountsDir(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_RUNTIME_DIR || (process.getuid?.() === 0 ? '/run' : tmpdir());
  return join(base, 'lazybd', 'mounts');
}

/**
 * One directory per mountpoint holds its state file, the daemon's socket and log and
 * the fuse dir. Named by a hash of the real path; kept short because a unix socket
 * path must fit in 108 bytes.
 */
export function stateDirFor(realMountpoint: string, env: NodeJS.ProcessEnv = process.env): string {
  return join(mountsDir(env), createHash('sha256').update(realMountpoint).digest('hex').slice(0, 24));
}

export async function readState(dir: string): Promise<MountState | undefined> {
  try {
    return JSON.parse(await readFile(join(dir, STATE_FILE), 'utf8')) as MountState;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

/** Creates the state file; fails with EEXIST when another mount claimed the dir first. */
export async function createState(dir: string, state: MountState): Promise<void> {
  await writeFile(join(dir, STATE_FILE), JSON.stringify(state) + '\n', { flag: 'wx' });
}

export async function saveState(dir: string, state: MountState): Promise<void> {
  const tmp = join(dir, `${STATE_FILE}.tmp`);
  await writeFile(tmp, JSON.stringify(state) + '\n');
  await rename(tmp, join(dir, STATE_FILE));
}
