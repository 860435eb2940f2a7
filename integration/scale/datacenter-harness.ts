// Running the datacenter CLI from tests: the JSON report, and what a run left behind.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import type { DatacenterReport } from './report.js';

export const DATACENTER_BIN = join(process.cwd(), 'dist', 'integration', 'scale', 'datacenter.js');
export const HARNESS_TOOLS = ['ip', 'tc', 'setpriv', 'curl', 'docker-registry'];

/** Runs the harness (`bin`: the datacenter's, or another built on it) with `--json` to completion (bounded by `timeoutMs`); `report` is its JSON (a sweep's with --cleanup). */
export function runHarness<T = DatacenterReport>(args: string[], timeoutMs: number, bin = DATACENTER_BIN): Promise<{ status: number | null; report?: T; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args, '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGTERM'), timeoutMs);
    child.on('error', reject);
    child.on('close', (status) => {
      clearTimeout(timer);
      let report: T | undefined;
      try {
        report = stdout.trim() ? (JSON.parse(stdout) as T) : undefined;
      } catch {
        // left undefined: the assertion shows stderr
      }
      resolve({ status, report, stderr });
    });
  });
}
