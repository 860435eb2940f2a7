import { chmod, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { request } from 'undici';
import { LAZYBD_BIN } from './cli.js';
import { metricSum } from './prometheus-text.js';
import { spawnOwned, waitFor, type Owned } from './processes.js';

export const TEST_TOKEN = 'lazybd-test-token-0123456789abcdef';

/** A token file the supernode and nodes accept (mode 600, as they demand). */
export async function writeTokenFile(dir: string, token = TEST_TOKEN): Promise<string> {
  const file = join(dir, 'supernode.token');
  await writeFile(file, `${token}\n`, { mode: 0o600 });
  await chmod(file, 0o600);
  return file;
}

export interface SupernodeProcess {
  url: string;
  process: Owned;
  /** GET/POST on the supernode with the test token; the parsed JSON body and status. */
  call(path: string, body?: unknown, token?: string | null): Promise<{ status: number; body: unknown; text: string }>;
  /** A metric's value from /metrics, summed over its label sets. */
  metric(name: string): Promise<number>;
  stop(): Promise<void>;
}

/** `lazybd supernode` in front of `upstream`, on a free loopback port, its cache in `cacheDir`. */
export async function startSupernode(upstream: string, cacheDir: string, tokenFile: string, extra: string[] = []): Promise<SupernodeProcess> {
  const listen = extra.includes('--listen') ? [] : ['--listen', '127.0.0.1:0'];
  const proc = spawnOwned(process.execPath, [LAZYBD_BIN, 'supernode', '--upstream', upstream, '--plain-http', ...listen, '--token-file', tokenFile, '--cache-dir', cacheDir, '--json', ...extra]);
  await waitFor(() => /"listening"/.test(proc.output()) || proc.child.exitCode !== null, 20_000, 'the supernode to listen');
  if (proc.child.exitCode !== null) throw new Error(`supernode exited: ${proc.output()}`);
  const url = (JSON.parse(/\{"listening".*\}/.exec(proc.output())![0]) as { listening: string }).listening;
  const call = async (path: string, body?: unknown, token: string | null = TEST_TOKEN) => {
    const res = await request(new URL(path, url), {
      method: body === undefined ? 'GET' : 'POST',
      headers: { ...(token === null ? {} : { authorization: `Bearer ${token}` }), 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.body.text();
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    return { status: res.statusCode, body: parsed, text };
  };
  const metric = async (name: string) => metricSum((await call('/metrics')).text, name);
  return { url, process: proc, call, metric, stop: () => proc.stop() };
}
