// The lazybd CLI run inside a host's namespace, as a daemon or to completion.
import { once } from 'node:events';
import { LAZYBD_BIN } from '../support/cli.js';
import { waitFor, type Owned } from '../support/processes.js';
import type { Datacenter, Host } from './topology.js';

export function spawnLazybd(dc: Datacenter, host: Host, args: string[], env: NodeJS.ProcessEnv = {}): Owned {
  return dc.spawn(host, process.execPath, [LAZYBD_BIN, ...args], { env: { ...process.env, ...env } });
}

/** Runs `lazybd args` in `host` to completion within `timeoutMs`; throws with its output on failure. */
export async function runLazybd(dc: Datacenter, host: Host, args: string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<string> {
  const p = spawnLazybd(dc, host, args, env);
  const exited = p.child.exitCode !== null ? Promise.resolve() : once(p.child, 'exit');
  const timer = setTimeout(() => void p.stop(1000), timeoutMs);
  await exited;
  clearTimeout(timer);
  if (p.child.exitCode !== 0) throw new Error(`lazybd ${args.join(' ')} in ${host.role} failed (${p.child.exitCode ?? p.child.signalCode}, limit ${timeoutMs} ms):\n${p.output()}`);
  return p.output();
}

/**
 * Waits for a daemon's first JSON line on stdout (serve and supernode print one when
 * they listen) and returns it; fails if the process exits or `timeoutMs` passes first.
 */
export async function firstJsonLine<T>(p: Owned, what: string, timeoutMs: number): Promise<T> {
  let line: string | undefined;
  await waitFor(
    () => {
      line = p.output().split('\n').find((l) => l.startsWith('{'));
      if (line !== undefined) return true;
      if (p.child.exitCode !== null || p.child.signalCode !== null) throw new Error(`${what} exited (${p.child.exitCode ?? p.child.signalCode}) before listening:\n${p.output()}`);
      return false;
    },
    timeoutMs,
    what,
  );
  return JSON.parse(line!) as T;
}
