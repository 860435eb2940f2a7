import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { once } from 'node:events';

const owned = new Set<ChildProcess>();

function killOwned(): void {
  for (const child of owned) child.kill('SIGKILL');
}

/** Every child a test starts is killed when the test process exits, however it exits. */
process.on('exit', killOwned);
// A signal's default action ends the process without 'exit': a runner stopped with
// Ctrl-C or by CI (SIGINT/SIGTERM/SIGHUP) would leave registries and daemons running.
// Kill them, then die of the same signal so the runner still sees how we ended.
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(signal, () => {
    killOwned();
    process.kill(process.pid, signal);
  });
}

export interface Owned {
  child: ChildProcess;
  /** stdout+stderr collected so far (for assertions and failure messages). */
  output(): string;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when the child has exited. */
  stop(graceMs?: number): Promise<void>;
}

export function spawnOwned(cmd: string, args: string[], options: SpawnOptions = {}): Owned {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options });
  owned.add(child);
  let out = '';
  child.stdout?.on('data', (d) => (out += d));
  child.stderr?.on('data', (d) => (out += d));
  const exited = once(child, 'exit').finally(() => owned.delete(child));
  return {
    child,
    output: () => out,
    async stop(graceMs = 3000) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited.catch(() => undefined);
      clearTimeout(timer);
    },
  };
}

/** Polls `check` until it returns true or `timeoutMs` passes. */
export async function waitFor(check: () => Promise<boolean> | boolean, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
