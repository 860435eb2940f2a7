import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);
const found = new Map<string, boolean>();

/** True when `tool` is on PATH. */
export async function hasTool(tool: string): Promise<boolean> {
  let ok = found.get(tool);
  if (ok === undefined) {
    ok = await run('sh', ['-c', `command -v ${tool}`]).then(() => true, () => false);
    found.set(tool, ok);
  }
  return ok;
}

/**
 * Guard for tests that need an external client. Locally a missing tool skips the
 * test (returns false); in CI (CI=true) it is a failure, never a silent skip.
 */
export async function requireTools(...tools: string[]): Promise<boolean> {
  const missing: string[] = [];
  for (const t of tools) if (!(await hasTool(t))) missing.push(t);
  if (missing.length === 0) return true;
  if (process.env.CI === 'true') throw new Error(`required tool(s) missing in CI: ${missing.join(', ')}`);
  console.warn(`  (skipping: ${missing.join(', ')} not installed)`);
  return false;
}
