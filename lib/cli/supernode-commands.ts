import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { remoteRef, registrySettings, type RegistryOptions } from './registry-commands.js';
import { parseHostPort } from './host-port.js';
import { supernodeUrls, type SupernodeClientOptions } from './supernode-options.js';
import { UsageError, openStore } from './image-commands.js';
import { progressBar } from './progress.js';
import { printResult, type GlobalOptions } from './run-command.js';
import { PreheatFailedError } from '../supernode/errors.js';
import { SupernodeServer } from '../supernode/http-server.js';
import { runPreheat } from '../supernode/preheat-client.js';
import { Supernode } from '../supernode/supernode.js';
import { TokenCheck, readTokenFile } from '../supernode/token-file.js';
import { stderrSourceLogger } from '../source/source-logger.js';

export interface SupernodeCommandOptions extends RegistryOptions {
  listen?: string;
  upstream?: string | string[];
  'token-file'?: string;
  'cache-dir'?: string;
  'max-size'?: number;
  'refetch-window'?: number;
  'manifest-ttl'?: number;
  'tls-cert'?: string;
  'tls-key'?: string;
}

const DEFAULT_LISTEN = '127.0.0.1:5100';
const DEFAULT_MAX_GIB = 100;

/** `lazybd supernode`: serves until SIGINT/SIGTERM; preheat jobs still running resume at the next start. */
export async function supernodeCommand(opts: SupernodeCommandOptions): Promise<void> {
  const upstreams = opts.upstream === undefined ? [] : ([] as string[]).concat(opts.upstream);
  if (upstreams.length === 0) throw new UsageError('name the registry this supernode fronts with --upstream HOST[:PORT]');
  if (!opts['token-file']) throw new UsageError('--token-file is required: the supernode answers only requests with one of its tokens');
  if (Boolean(opts['tls-cert']) !== Boolean(opts['tls-key'])) throw new UsageError('--tls-cert and --tls-key go together');
  const listen = parseHostPort('--listen', opts.listen ?? DEFAULT_LISTEN);
  const tokens = new TokenCheck(await readTokenFile(opts['token-file']));
  const tls = opts['tls-cert'] ? { cert: await readFile(opts['tls-cert']), key: await readFile(opts['tls-key']!) } : undefined;
  const dir = opts['cache-dir'] ?? join((await openStore(opts)).dir, 'supernode');
  const node = await Supernode.open({
    dir,
    upstreams,
    registry: await registrySettings(opts),
    maxBytes: Number(opts['max-size'] ?? DEFAULT_MAX_GIB) * 2 ** 30,
    refetchWindowMs: opts['refetch-window'] === undefined ? undefined : Number(opts['refetch-window']) * 1000,
    manifestTtlMs: opts['manifest-ttl'] === undefined ? undefined : Number(opts['manifest-ttl']) * 1000,
  });
  let server: SupernodeServer;
  try {
    server = await SupernodeServer.start(node, { ...listen, tls, tokens, log: stderrSourceLogger });
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
  timeout?: number;
  concurrency?: number;
}

/** `lazybd preheat`: every supernode fetches its share of the image; progress until all are done. */
export async function preheatCommand(input: string, opts: PreheatCommandOptions): Promise<void> {
  const remote = remoteRef(input);
  const urls = supernodeUrls(opts);
  if (urls.length === 0) throw new UsageError('preheat needs --supernode URL (each supernode the nodes will use)');
  if (!opts['token-file']) throw new UsageError('--supernode needs --token-file (supernodes only answer with a token)');
  const [token] = await readTokenFile(opts['token-file']);
  const bar = progressBar('preheat', opts);
  const jsonLines = opts.json || !process.stderr.isTTY;
  try {
    const result = await runPreheat({
      urls,
      token: token!,
      ns: remote.registry,
      repository: remote.repository,
      reference: remote.digest ?? remote.tag ?? 'latest',
      timeoutSeconds: opts.timeout === undefined ? undefined : Number(opts.timeout),
      concurrency: opts.concurrency === undefined ? undefined : Number(opts.concurrency),
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
