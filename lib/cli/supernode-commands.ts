import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { remoteRef, registrySettings, type RegistryOptions } from './registry-commands.js';
import type { SupernodeClientOptions } from './supernode-options.js';
import { openStore } from './image-commands.js';
import type { HostPort } from './option-kinds.js';
import { UsageError } from './usage-error.js';
import { progressBar } from './progress.js';
import { printResult, type GlobalOptions } from './run-command.js';
import { PreheatFailedError } from '../supernode/errors.js';
import { SupernodeServer } from '../supernode/http-server.js';
import { runPreheat } from '../supernode/preheat-client.js';
import { Supernode } from '../supernode/supernode.js';
import { TokenCheck, readTokenFile } from '../supernode/token-file.js';
import { stderrSourceLogger } from '../source/source-logger.js';

/** Defaults are in the command table. */
export interface SupernodeCommandOptions extends RegistryOptions {
  listen: HostPort;
  upstream: string[];
  'token-file'?: string;
  'cache-dir'?: string;
  /** GiB */
  'max-size': number;
  /** seconds */
  'refetch-window'?: number;
  /** seconds */
  'manifest-ttl': number;
  'tls-cert'?: string;
  'tls-key'?: string;
}

/** `lazybd supernode`: serves until SIGINT/SIGTERM; preheat jobs still running resume at the next start. */
export async function supernodeCommand(opts: SupernodeCommandOptions): Promise<void> {
  const upstreams = opts.upstream;
  if (Boolean(opts['tls-cert']) !== Boolean(opts['tls-key'])) throw new UsageError('--tls-cert and --tls-key go together');
  const tokens = new TokenCheck(await readTokenFile(opts['token-file']!));
  const tls = opts['tls-cert'] ? { cert: await readFile(opts['tls-cert']), key: await readFile(opts['tls-key']!) } : undefined;
  const dir = opts['cache-dir'] ?? join((await openStore(opts)).dir, 'supernode');
  const node = await Supernode.open({
    dir,
    upstreams,
    registry: await registrySettings(opts),
    maxBytes: opts['max-size'] * 2 ** 30,
    refetchWindowMs: opts['refetch-window'] === undefined ? undefined : opts['refetch-window'] * 1000,
    manifestTtlMs: opts['manifest-ttl'] * 1000,
  });
  let server: SupernodeServer;
  try {
    server = await SupernodeServer.start(node, { ...opts.listen, tls, tokens, log: stderrSourceLogger });
  } catch (e) {
    await node.close();
    throw e;
  }
  printResult(opts, { listening: server.url, upstreams, cacheDir: dir, pid: process.pid }, () => `supernode for ${upstreams.join(', ')} at ${server.url} (cache ${dir})`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await server.close();
  await node.close();
}

export interface PreheatCommandOptions extends SupernodeClientOptions, GlobalOptions {
  /** seconds */
  timeout: number;
  concurrency: number;
}

/** `lazybd preheat`: every supernode fetches its share of the image; progress until all are done. */
export async function preheatCommand(input: string, opts: PreheatCommandOptions): Promise<void> {
  const remote = remoteRef(input);
  const urls = opts.supernode;
  const [token] = await readTokenFile(opts['token-file']!);
  const bar = progressBar('preheat', opts);
  const jsonLines = opts.json || !process.stderr.isTTY;
  try {
    const result = await runPreheat({
      urls,
      token: token!,
      ns: remote.registry,
      repository: remote.repository,
      reference: remote.digest ?? remote.tag ?? 'latest',
      timeoutSeconds: opts.timeout,
      concurrency: opts.concurrency,
      onProgress: (p) => {
        bar.update(p.bytes.done, p.bytes.total);
        if (jsonLines) process.stdout.write(JSON.stringify({ progress: p }) + '\n');
      },
    });
    bar.stop();
    if (result.failed.length) {
      const first = result.failed[0]!;
      throw new PreheatFailedError(`preheat of ${input} failed on ${first.url}: ${first.job.message ?? 'unknown error'}${first.job.errors[0] ? ` (first: chunk ${first.job.errors[0].chunk} of ${first.job.errors[0].blob}: ${first.job.errors[0].message})` : ''}`);
    }
    printResult(opts, { done: true, ...result.summary }, () => `preheated ${input} into ${urls.length} supernode(s): ${result.summary.chunks} chunks, ${(result.summary.bytes / 1048576).toFixed(1)} MiB (${(result.summary.fetched / 1048576).toFixed(1)} MiB fetched) in ${result.summary.seconds.toFixed(1)} s`);
  } finally {
    bar.stop();
  }
}
