import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const LAZYBD_BIN = join(process.cwd(), 'dist', 'bin', 'lazybd.js');

export interface CliResult {
  status: number;
  stdout: string;
  stderr: string;
}

/** Runs the built `lazybd` CLI to completion (killed after `timeoutMs`, if given); never throws on a non-zero status. */
export function lazybd(args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs?: number): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(process.execPath, [LAZYBD_BIN, ...args], { env: { ...process.env, ...env }, maxBuffer: 64 << 20, timeout: timeoutMs }, (err, stdout, stderr) => {
      resolve({ status: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

/** A temp directory removed after `fn`, whatever happens. */
export async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'lazybd-test-'));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
