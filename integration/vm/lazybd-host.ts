// Where a host's lazybd daemons run: this process's own network namespace (the tests), or a
// host of the datacenter harness. Disk services start daemons and read their metrics through it.
import { LAZYBD_BIN, lazybd } from '../support/cli.js';
import { spawnOwned, type Owned } from '../support/processes.js';
import { runLazybd, spawnLazybd } from '../scale/lazybd-process.js';
import { httpGet } from '../scale/ns-http.js';
import type { Datacenter, Host } from '../scale/topology.js';

export interface LazybdHost {
  /** Address daemons bind their --metrics to. */
  readonly address: string;
  spawn(args: string[], env: NodeJS.ProcessEnv): Owned;
  /** Runs a lazybd command to completion; its stdout, or an error with its output. */
  run(args: string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<string>;
  /** GET from the host itself; undefined when nothing answers 200. */
  get(url: string): Promise<string | undefined>;
}

export const localHost: LazybdHost = {
  address: '127.0.0.1',
  spawn: (args, env) => spawnOwned('setpriv', ['--pdeathsig', 'KILL', '--', process.execPath, LAZYBD_BIN, ...args], { env: { ...process.env, ...env } }),
  run: async (args, env, timeoutMs) => {
    const r = await lazybd(args, env, timeoutMs);
    if (r.status !== 0) throw new Error(`lazybd ${args.join(' ')} failed (${r.status}):\n${r.stdout}${r.stderr}`);
    return r.stdout;
  },
  get: async (url) => {
    const res = await fetch(url, { signal: AbortSignal.timeout(10_000) }).catch(() => undefined);
    return res?.status === 200 ? res.text() : undefined;
  },
};

export function datacenterHost(dc: Datacenter, host: Host): LazybdHost {
  return {
    address: host.address,
    spawn: (args, env) => spawnLazybd(dc, host, args, env),
    run: (args, env, timeoutMs) => runLazybd(dc, host, args, env, timeoutMs),
    get: async (url) => {
      const r = await httpGet(host, url);
      return r.status === 200 ? r.body : undefined;
    },
  };
}
