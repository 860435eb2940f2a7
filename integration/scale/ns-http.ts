// HTTP GETs from inside a namespace (the run's hosts have no address in the root namespace).
import { waitFor } from '../support/processes.js';
import { inNamespace } from './netns.js';
import { system } from './system-command.js';
import type { Host } from './topology.js';

export interface HttpAnswer {
  status: number;
  body: string;
}

/**
 * `curl` from `from`'s namespace. `headerFile` holds extra request headers (an
 * Authorization line), so no token appears on a command line. Status 0: no answer.
 */
export async function httpGet(from: Host, url: string, options: { headerFile?: string; timeoutS?: number } = {}): Promise<HttpAnswer> {
  const timeoutS = options.timeoutS ?? 10;
  const args = ['-s', '--max-time', String(timeoutS), '-w', '\n%{http_code}', ...(options.headerFile ? ['-H', `@${options.headerFile}`] : []), url];
  const [cmd, argv] = inNamespace(from.ns, 'curl', args);
  const out = await system(cmd, argv, (timeoutS + 5) * 1000).catch(() => '\n0');
  const cut = out.lastIndexOf('\n');
  return { status: Number(out.slice(cut + 1)) || 0, body: out.slice(0, cut) };
}

/** Polls until `url` answers 200. */
export async function waitForHttp(from: Host, url: string, what: string, timeoutMs: number): Promise<void> {
  await waitFor(async () => (await httpGet(from, url, { timeoutS: 2 })).status === 200, timeoutMs, what);
}
