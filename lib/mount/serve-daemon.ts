import { readFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { fileURLToPath } from 'node:url';
import { LazybdError } from '../errors.js';
import { logTail, spawnDetached, waitUntilReady, type DetachedProcess } from './detached-process.js';
import { MountError } from './errors.js';

const LAZYBD_BIN = fileURLToPath(new URL('../../bin/lazybd.js', import.meta.url));
const READY_TIMEOUT_MS = 30_000;

export interface ServeDaemonOptions {
  ref: string;
  exportName: string;
  socket: string;
  log: string;
  upperDir?: string;
  readOnly: boolean;
  store?: string;
}

/** Starts `lazybd serve` for one image as a background daemon on a unix socket. */
export function spawnServeDaemon(o: ServeDaemonOptions): Promise<DetachedProcess> {
  const args = [LAZYBD_BIN, 'serve', o.ref, '--socket', o.socket, '--export', o.exportName];
  if (o.upperDir) args.push('--upper', o.upperDir);
  if (o.readOnly) args.push('--read-only');
  if (o.store) args.push('--store', o.store);
  return spawnDetached(process.execPath, args, o.log);
}

/**
 * Resolves once the daemon accepts connections. If it exits first, its own coded
 * error (the `lazybd: … (E_…)` line it logged, e.g. for an upper in use) is raised here.
 */
export async function waitForServeDaemon(daemon: DetachedProcess, o: ServeDaemonOptions): Promise<void> {
  const outcome = await waitUntilReady(daemon, () => socketAnswers(o.socket), READY_TIMEOUT_MS);
  if (outcome === 'ready') return;
  if (outcome === 'timeout') throw new MountError('E_MOUNT_FAILED', `lazybd serve did not answer on ${o.socket} within ${READY_TIMEOUT_MS / 1000} s (log: ${o.log})`);
  const log = await readFile(o.log, 'utf8').catch(() => '');
  const coded = [...log.matchAll(/^lazybd: (.*) \((E_[A-Z0-9_]+)\)$/gm)].pop();
  if (coded) throw new LazybdError(coded[2]!, coded[1]!, { exitStatus: outcome.code ?? 1 });
  throw new MountError('E_MOUNT_FAILED', `lazybd serve exited (${outcome.signal ?? `status ${outcome.code}`}) before answering: ${await logTail(o.log)}`);
}

function socketAnswers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}
