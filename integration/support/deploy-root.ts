// A lazybd installed by deploy/install.sh into a temp root, and services of its units started
// there the way systemd would start them (deploy/unit-file.ts): the deploy tests' fixture.
import { execFile } from 'node:child_process';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { prepareService, resolveService, type ResolvedService } from '../../deploy/unit-file.js';
import { spawnOwned, type Owned } from './processes.js';

export const INSTALL_SH = join(process.cwd(), 'deploy', 'install.sh');
export const UNIT_DIR = '/etc/systemd/system';

export interface CommandResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion (killed after `timeoutMs`); never throws on a non-zero status. */
export function runCommand(cmd: string, args: string[], options: { env?: NodeJS.ProcessEnv; timeoutMs?: number; cwd?: string } = {}): Promise<CommandResult> {
  return new Promise((resolve) => {
    execFile(cmd, args, { env: options.env ?? process.env, cwd: options.cwd, timeout: options.timeoutMs ?? 30_000, killSignal: 'SIGKILL', maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      const status = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : null) : 0;
      resolve({ status, stdout, stderr: stderr || (err && status === null ? err.message : '') });
    });
  });
}

export interface InstalledRoot {
  root: string;
  /** The installed wrapper, `<root>/usr/bin/lazybd`. */
  lazybd: string;
  /** `<root>` + an absolute path. */
  path(p: string): string;
  remove(): Promise<void>;
}

/** `deploy/install.sh --root <temp dir>`; throws with its output when it fails. */
export async function installIntoTempRoot(): Promise<InstalledRoot> {
  const root = await mkdtemp(join(tmpdir(), 'lazybd-root-'));
  const r = await runCommand('bash', [INSTALL_SH, '--root', root], { timeoutMs: 60_000 });
  if (r.status !== 0) {
    await rm(root, { recursive: true, force: true });
    throw new Error(`install.sh --root ${root} failed (${r.status}):\n${r.stdout}${r.stderr}`);
  }
  return { root, lazybd: join(root, 'usr/bin/lazybd'), path: (p) => join(root, p), remove: () => rm(root, { recursive: true, force: true }) };
}

/**
 * systemd-analyze --root needs the units a service's default dependencies name
 * (sysinit.target, basic.target, shutdown.target, …): this machine's own, copied in.
 */
export async function addSystemUnits(root: string): Promise<void> {
  await cp('/lib/systemd/system', join(root, 'usr/lib/systemd/system'), { recursive: true, verbatimSymlinks: true });
}

export interface StartedService {
  service: ResolvedService;
  process: Owned;
}

/** Makes the unit's directories and credentials in the root, then runs its ExecStart with its umask and environment only. */
export async function startService(root: string, unit: string): Promise<StartedService> {
  const service = await resolveService(join(UNIT_DIR, unit), { root });
  await prepareService(service);
  const umask = service.umask.toString(8).padStart(4, '0');
  const process = spawnOwned('sh', ['-c', 'umask "$0" && cd / && exec "$@"', umask, ...service.argv], { env: service.env });
  return { service, process };
}
