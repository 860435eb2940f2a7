// Every invocation of the supernode side of the CLI, in one place (the contract of issue 9):
//   lazybd supernode --listen HOST:PORT --upstream REGISTRY --plain-http --token-file F --cache-dir D [--max-size GiB] --json
//   lazybd serve <registry-ref> --plain-http --supernode URL… --token-file F …
//   lazybd preheat <registry-ref> --supernode URL… --token-file F --json
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LAZYBD_BIN } from '../support/cli.js';
import type { Owned } from '../support/processes.js';
import { SERVICE_PORT } from './address-plan.js';
import { firstJsonLine, runLazybd, spawnLazybd } from './lazybd-process.js';
import { httpGet } from './ns-http.js';
import type { Datacenter, Host } from './topology.js';

/** Whether this build has `lazybd supernode` (its --help exits 0). */
export function supernodeAvailable(): Promise<boolean> {
  return new Promise((resolve) => execFile(process.execPath, [LAZYBD_BIN, 'supernode', '--help'], { timeout: 30_000 }, (err) => resolve(!err)));
}

/** The bearer token supernodes accept and nodes present: one random token a run, in an owner-only file. */
export interface SupernodeCredentials {
  tokenFile: string;
  /** `Authorization: Bearer …`, for scraping /metrics with curl -H @file. */
  headerFile: string;
}

export async function writeCredentials(dir: string): Promise<SupernodeCredentials> {
  const token = randomBytes(24).toString('hex');
  const tokenFile = join(dir, 'supernode.token');
  const headerFile = join(dir, 'supernode.header');
  await writeFile(tokenFile, `${token}\n`, { mode: 0o600 });
  await writeFile(headerFile, `Authorization: Bearer ${token}\n`, { mode: 0o600 });
  return { tokenFile, headerFile };
}

export interface RunningSupernode {
  host: Host;
  url: string;
  process: Owned;
}

/** Starts `lazybd supernode` in `host`, a pull-through of `upstream`; resolves when it prints that it listens. */
export async function startSupernode(dc: Datacenter, host: Host, upstream: string, credentials: SupernodeCredentials, dir: string, timeoutMs: number): Promise<RunningSupernode> {
  const cacheDir = join(dir, 'cache');
  await mkdir(cacheDir, { recursive: true });
  const p = spawnLazybd(dc, host, [
    'supernode',
    '--listen', `${host.address}:${SERVICE_PORT}`,
    '--upstream', upstream,
    '--plain-http',
    '--token-file', credentials.tokenFile,
    '--cache-dir', cacheDir,
    '--json',
  ], { LAZYBD_STORE: join(dir, 'store'), XDG_RUNTIME_DIR: dir });
  const ready = await firstJsonLine<{ listening?: string }>(p, `supernode ${host.role}`, timeoutMs);
  if (typeof ready.listening !== 'string') throw new Error(`supernode ${host.role} printed ${JSON.stringify(ready)}, not {"listening":…}`);
  return { host, url: ready.listening, process: p };
}

/** What a node adds to `lazybd serve <registry-ref> --plain-http …` to ask the supernodes first. */
export function nodeSupernodeArgs(supernodes: RunningSupernode[], credentials: SupernodeCredentials): string[] {
  return [...supernodes.flatMap((s) => ['--supernode', s.url]), '--token-file', credentials.tokenFile];
}

/**
 * `lazybd preheat` from `from`: returns when the image is wholly in the supernodes. One call
 * names them all (as the nodes do), so each is filled with the chunks the nodes will ask it for.
 */
export async function preheat(dc: Datacenter, from: Host, registryRef: string, supernodes: RunningSupernode[], credentials: SupernodeCredentials, dir: string, timeoutMs: number): Promise<void> {
  await runLazybd(dc, from, ['preheat', registryRef, ...nodeSupernodeArgs(supernodes, credentials), '--json'], { LAZYBD_STORE: join(dir, 'preheat-store'), XDG_RUNTIME_DIR: dir }, timeoutMs);
}

/** The supernode's Prometheus text (GET /metrics with the token), or undefined if it does not answer. */
export async function scrapeSupernode(from: Host, supernode: RunningSupernode, credentials: SupernodeCredentials): Promise<string | undefined> {
  const r = await httpGet(from, `${supernode.url}/metrics`, { headerFile: credentials.headerFile });
  return r.status === 200 ? r.body : undefined;
}
