import { mkdir, realpath, rm, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { nbdUri } from '../daemon/socket-path.js';
import { stopProcess } from './detached-process.js';
import { MountError } from './errors.js';
import { attachLoop, detachLoop, spawnNbdfuse, stopNbdfuse, waitForNbdfuse } from './fuse-loop.js';
import { attachNbd, detachNbd, hasKernelNbd } from './kernel-nbd.js';
import { mountAt } from './mount-table.js';
import { createState, readState, saveState, stateDirFor, type MountState } from './mount-state.js';
import { spawnServeDaemon, waitForServeDaemon } from './serve-daemon.js';
import { runTool } from './system-command.js';

export interface MountImageOptions {
  ref: string;
  mountpoint: string;
  /** Without an upper the image is mounted read-only. */
  upperDir?: string;
  readOnly?: boolean;
  fstype?: string;
  store?: string;
}

/** The daemon flushes its upper on SIGTERM; a large upper may take a while. */
const DAEMON_STOP_GRACE_MS = 60_000;

async function realMountpoint(path: string): Promise<string> {
  const real = await realpath(path).catch(() => undefined);
  if (!real || !(await stat(real)).isDirectory()) throw new MountError('E_MOUNTPOINT_INVALID', `${path} is not a directory`);
  return real;
}

/**
 * `lazybd mount`: serve daemon → block device (kernel NBD, or nbdfuse + loop) →
 * filesystem mount, each step recorded in the state as soon as it exists. On any
 * failure everything set up so far is undone before the error surfaces.
 */
export async function mountImage(o: MountImageOptions): Promise<MountState> {
  const mountpoint = await realMountpoint(o.mountpoint);
  const dir = stateDirFor(mountpoint);
  const readOnly = Boolean(o.readOnly) || !o.upperDir;
  const state: MountState = { ref: o.ref, mountpoint, readOnly, upperDir: o.upperDir && resolve(o.upperDir) };
  await mkdir(dir, { recursive: true, mode: 0o700 });
  try {
    await createState(dir, state);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    throw new MountError('E_ALREADY_MOUNTED', `lazybd already has a mount at ${mountpoint}; run lazybd umount ${mountpoint} first`);
  }
  try {
    const serve = { ref: o.ref, exportName: o.ref, socket: join(dir, 'nbd.sock'), log: join(dir, 'serve.log'), upperDir: state.upperDir, readOnly, store: o.store && resolve(o.store) };
    const daemon = await spawnServeDaemon(serve);
    state.daemon = { pid: daemon.pid, socket: serve.socket, exportName: serve.exportName, log: serve.log };
    await saveState(dir, state);
    await waitForServeDaemon(daemon, serve);

    let device: string;
    if (await hasKernelNbd()) {
      device = state.nbdDevice = await attachNbd(serve.socket, serve.exportName);
    } else {
      const fuseDir = join(dir, 'fuse');
      const log = join(dir, 'nbdfuse.log');
      const fuse = await spawnNbdfuse(fuseDir, nbdUri(serve.exportName, { path: serve.socket }), readOnly, log);
      state.fuse = { dir: fuseDir, pid: fuse.pid };
      await saveState(dir, state);
      await waitForNbdfuse(fuse, fuseDir, log);
      device = state.loopDevice = await attachLoop(fuseDir, readOnly);
    }
    await saveState(dir, state);
    await runTool('mount', [...(o.fstype ? ['-t', o.fstype] : []), ...(readOnly ? ['-o', 'ro'] : []), device, mountpoint]);
    return state;
  } catch (e) {
    try {
      await teardown(dir, state);
    } catch (cleanup) {
      throw new MountError('E_MOUNT_FAILED', `${(e as Error).message}; clean-up also failed: ${(cleanup as Error).message} (retry with lazybd umount ${mountpoint})`, { cause: e });
    }
    throw e;
  }
}

/** `lazybd umount`: undoes a mount recorded by `mountImage`, whatever state it got to. */
export async function unmountImage(path: string): Promise<MountState> {
  const mountpoint = await realpath(path).catch(() => resolve(path));
  const dir = stateDirFor(mountpoint);
  const state = await readState(dir);
  if (!state) throw new MountError('E_NOT_MOUNTED', `lazybd has no mount at ${mountpoint}`);
  await teardown(dir, state);
  return state;
}

/**
 * Undoes a mount in reverse order of set-up. Every step checks whether its part is
 * still there (and still ours), so it is safe on a half-made or half-undone mount and
 * safe to repeat. It stops at the first failure, leaving the state for a retry.
 */
async function teardown(dir: string, state: MountState): Promise<void> {
  const device = state.loopDevice ?? state.nbdDevice;
  const top = await mountAt(state.mountpoint);
  if (device && top?.source === device) await runTool('umount', [state.mountpoint], 'E_UMOUNT_FAILED');
  await runTool('sync', [], 'E_UMOUNT_FAILED');
  if (state.loopDevice && state.fuse) await detachLoop(state.loopDevice, state.fuse.dir);
  if (state.nbdDevice) await detachNbd(state.nbdDevice);
  if (state.fuse) await stopNbdfuse(state.fuse.dir, state.fuse.pid);
  if (state.daemon) {
    const how = await stopProcess(state.daemon.pid, state.daemon.socket, { graceMs: DAEMON_STOP_GRACE_MS });
    if (how === 'killed') process.stderr.write(`lazybd: serve daemon ${state.daemon.pid} ignored SIGTERM for ${DAEMON_STOP_GRACE_MS / 1000} s and was killed; unflushed writes may be lost\n`);
  }
  await rm(dir, { recursive: true, force: true });
}
