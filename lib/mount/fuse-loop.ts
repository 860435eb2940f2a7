import { mkdir, readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { logTail, spawnDetached, stopProcess, waitUntilReady, type DetachedProcess } from './detached-process.js';
import { MountError } from './errors.js';
import { mountAt } from './mount-table.js';
import { pollUntil } from './poll.js';
import { runTool } from './system-command.js';

// Without the kernel nbd module: nbdfuse shows the export as one file, a loop device makes it a block device.

const READY_TIMEOUT_MS = 30_000;

/** The file nbdfuse presents inside its mount directory. */
const fuseFile = (dir: string) => join(dir, 'nbd');

/**
 * Starts nbdfuse on `dir`. nbdfuse stays in the foreground, so it runs detached; it
 * writes its pid file once the file is ready to use.
 */
export async function spawnNbdfuse(dir: string, uri: string, readOnly: boolean, log: string): Promise<DetachedProcess> {
  await mkdir(dir, { recursive: true });
  return spawnDetached('nbdfuse', nbdfuseArgs(dir, uri, readOnly), log);
}

/** nbdfuse's arguments: show `uri` as the file `<dir>/nbd`, writing its pid file when ready. */
export function nbdfuseArgs(dir: string, uri: string, readOnly: boolean): string[] {
  return [...(readOnly ? ['-r'] : []), '-P', pidFile(dir), dir, uri];
}

/** True once nbdfuse on `dir` serves its file. */
export async function nbdfuseReady(dir: string): Promise<boolean> {
  return (await readFile(pidFile(dir), 'utf8').catch(() => '')).trim() !== '';
}

export async function waitForNbdfuse(fuse: DetachedProcess, dir: string, log: string): Promise<void> {
  const outcome = await waitUntilReady(fuse, () => nbdfuseReady(dir), READY_TIMEOUT_MS);
  if (outcome !== 'ready') throw new MountError('E_MOUNT_FAILED', `nbdfuse ${outcome === 'timeout' ? 'was not ready in time' : 'exited'}: ${await logTail(log)}`);
}

/** pid file beside (not inside) the fuse dir: inside it would be hidden by the mount. */
const pidFile = (dir: string) => `${dir}.pid`;

export async function attachLoop(dir: string, readOnly: boolean): Promise<string> {
  return (await runTool('losetup', ['--find', '--show', ...(readOnly ? ['--read-only'] : []), fuseFile(dir)])).trim();
}

/** Detaches the loop device, unless it is gone or was reused for some other file. */
export async function detachLoop(device: string, dir: string): Promise<void> {
  const backing = await readFile(`/sys/block/${basename(device)}/loop/backing_file`, 'utf8').catch(() => '');
  if (backing.trim() !== fuseFile(dir)) return;
  await runTool('losetup', ['--detach', device], 'E_UMOUNT_FAILED');
}

/** Unmounts the fuse dir (nbdfuse then exits by itself) and makes sure nbdfuse is gone. */
export async function stopNbdfuse(dir: string, pid: number): Promise<void> {
  if ((await mountAt(dir))?.fsType.startsWith('fuse')) {
    // The loop driver lets go of the file asynchronously after its detach: retry while busy.
    let lastError: unknown;
    const unmounted = await pollUntil(async () => {
      try {
        await runTool('fusermount3', ['-u', dir], 'E_UMOUNT_FAILED');
        return true;
      } catch (e) {
        lastError = e;
        return false;
      }
    }, 10_000, 200);
    if (!unmounted) throw lastError;
  }
  await stopProcess(pid, dir, { exitOnItsOwnMs: 5000, graceMs: 5000 });
}
