import { mkdir, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isProcessAlive } from '../store/process-alive.js';
import { writeFileAtomic } from '../store/atomic-file.js';
import { ControlError } from './errors.js';

/**
 * How the CLI finds running daemons: each leaves `<runtime>/lazybd/daemons/<pid>.json`
 * naming its control socket. The daemon itself, asked over that socket, is the one source
 * of truth for what it serves; these files only point at it.
 */
export interface DaemonEntry {
  pid: number;
  control: string;
  startedAt: string;
}

function runtimeDir(env: NodeJS.ProcessEnv): string {
  return join(env.XDG_RUNTIME_DIR || tmpdir(), 'lazybd');
}

export function daemonsDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(runtimeDir(env), 'daemons');
}

/** A daemon's control socket unless --control names one: per pid, so daemons side by side never clash. */
export function defaultControlPath(pid = process.pid, env: NodeJS.ProcessEnv = process.env): string {
  return join(runtimeDir(env), 'control', `${pid}.sock`);
}

/** Publishes this daemon; the returned function withdraws it. */
export async function announceDaemon(entry: DaemonEntry, dir = daemonsDir()): Promise<() => Promise<void>> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const path = join(dir, `${entry.pid}.json`);
  await writeFileAtomic(path, JSON.stringify(entry) + '\n');
  return () => rm(path, { force: true });
}

/** Daemons whose process is alive; entries of dead ones are removed. */
export async function liveDaemons(dir = daemonsDir()): Promise<DaemonEntry[]> {
  const names = await readdir(dir).catch(() => [] as string[]);
  const out: DaemonEntry[] = [];
  for (const name of names.filter((n) => /^\d+\.json$/.test(n))) {
    const path = join(dir, name);
    if (!isProcessAlive(Number(name.slice(0, -5)))) {
      await rm(path, { force: true });
      continue;
    }
    const entry = await readFile(path, 'utf8').then((t) => JSON.parse(t) as DaemonEntry, () => undefined);
    if (entry && typeof entry.control === 'string') out.push(entry);
  }
  return out.sort((a, b) => a.pid - b.pid);
}

/** The control socket to talk to: the one named, else the only running daemon's. */
export async function pickControlSocket(named: string | undefined, dir = daemonsDir()): Promise<string> {
  if (named) return named;
  const live = await liveDaemons(dir);
  if (live.length === 1) return live[0]!.control;
  if (live.length === 0) throw new ControlError('E_NO_DAEMON', 'no lazybd daemon is running (start one with lazybd serve, or name its control socket with --daemon)');
  throw new ControlError('E_DAEMON_AMBIGUOUS', `${live.length} lazybd daemons are running (pids ${live.map((d) => d.pid).join(', ')}); name one with --daemon SOCKET`);
}
