import { execFile } from 'node:child_process';

/** A failed `ip`/`tc`/`curl` call: the command line and what it printed. */
export class SystemCommandError extends Error {
  constructor(
    readonly command: string,
    readonly stderr: string,
    readonly status: number | string | null,
  ) {
    super(`${command}: ${stderr.trim() || `exit ${String(status)}`}`);
  }
}

/** Runs a command to completion (bounded by `timeoutMs`); resolves stdout, rejects with its stderr. */
export function system(cmd: string, args: string[], timeoutMs = 15_000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new SystemCommandError([cmd, ...args].join(' '), stderr || err.message, (err as { code?: number | string }).code ?? null));
      else resolve(stdout);
    });
  });
}
