import { spawn } from 'node:child_process';
import { open, readFile } from 'node:fs/promises';
import { MountError } from './errors.js';
import { pollUntil } from './poll.js';

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface DetachedProcess {
  pid: number;
  /** Settles when the process exits while this process still runs; never rejects. */
  exited: Promise<ExitStatus>;
}

/**
 * Starts a process that outlives us: its own session (so a terminal hang-up or a
 * signal to our process group does not reach it), output appended to `logFile`,
 * and not keeping our event loop alive.
 */
export async function spawnDetached(cmd: string, args: string[], logFile: string): Promise<DetachedProcess> {
  const log = await open(logFile, 'a');
  try {
    const child = spawn(cmd, args, { detached: true, stdio: ['ignore', log.fd, log.fd] });
    const exited = new Promise<ExitStatus>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', (e) => reject(new MountError('E_MOUNT_FAILED', `cannot start ${cmd}: ${e.message}`, { cause: e })));
    });
    child.unref();
    return { pid: child.pid!, exited };
  } finally {
    await log.close();
  }
}

/**
 * Polls `ready` until it holds; resolves to how the process exited if it did so
 * first, or 'timeout'.
 */
export async function waitUntilReady(proc: DetachedProcess, ready: () => Promise<boolean>, timeoutMs: number): Promise<'ready' | 'timeout' | ExitStatus> {
  let exit: ExitStatus | undefined;
  void proc.exited.then((e) => (exit = e));
  const done = await pollUntil(async () => exit !== undefined || (await ready()), timeoutMs);
  return exit ?? (done ? 'ready' : 'timeout');
}

/** The last lines of a log, on one line, for an error message. */
export async function logTail(log: string, lines = 5): Promise<string> {
  return (await readFile(log, 'utf8').catch(() => '')).trim().split('\n').slice(-lines).join(' | ');
}

/**
 * True when `pid` runs and its command line contains `marker` (a path only our
 * process has in its arguments), so a pid reused by another program is never
 * mistaken for ours. A zombie counts as gone: it has already exited.
 */
export async function isOurProcess(pid: number, marker: string): Promise<boolean> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) return false;
    return (await readFile(`/proc/${pid}/cmdline`, 'utf8')).includes(marker);
  } catch {
    return false;
  }
}

/**
 * Ends one of our processes: waits `exitOnItsOwnMs` for it to leave by itself, then
 * SIGTERM, then SIGKILL after `graceMs`. Resolves once it is gone; returns how it ended.
 */
export async function stopProcess(pid: number, marker: string, options: { exitOnItsOwnMs?: number; graceMs: number }): Promise<'gone' | 'terminated' | 'killed'> {
  const gone = async () => !(await isOurProcess(pid, marker));
  if (await pollUntil(gone, options.exitOnItsOwnMs ?? 0)) return 'gone';
  signal(pid, 'SIGTERM');
  if (await pollUntil(gone, options.graceMs)) return 'terminated';
  signal(pid, 'SIGKILL');
  await pollUntil(gone, 10_000);
  return 'killed';
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw e;
  }
}
