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
import type { DhtBootstrap } from '../p2p/dht-bootstrap.js';
import { dhtAddress } from './p2p-options.js';

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
  'dht-listen'?: HostPort;
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
  let dht: DhtBootstrap | undefined;
  try {
    server = await SupernodeServer.start(node, { ...opts.listen, tls, tokens, log: stderrSourceLogger });
    // The datacenter's DHT lives here too, so a datacenter needs nothing else (loaded only when asked for).
    const at = opts['dht-listen'];
    if (at) dht = await (await import('../p2p/dht-bootstrap.js')).startDhtBootstrap(dhtAddress('--dht-listen takes an IPv4 HOST:PORT', `${at.host}:${at.port}`).host, at.port);
  } catch (e) {
    await node.close();
    throw e;
  }
  const bootstrap = dht?.bootstrap.map((b) => `${b.host}:${b.port}`).join(',');
  printResult(opts, { listening: server.url, upstreams, cacheDir: dir, pid: process.pid, ...(bootstrap ? { p2pBootstrap: bootstrap } : {}) }, () =>
    [`supernode for ${upstreams.join(', ')} at ${server.url} (cache ${dir})`, ...(bootstrap ? [`P2P DHT bootstrap at ${bootstrap} (serve --p2p-bootstrap ${bootstrap})`] : [])].join('\n'),
  );
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await server.close();
  await dht?.close();
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
