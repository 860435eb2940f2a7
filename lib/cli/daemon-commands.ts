import { join } from 'node:path';
import { defaultControlPath } from '../control/daemon-directory.js';
import { Daemon } from '../daemon/daemon.js';
import { defaultStateDir } from '../daemon/daemon-state.js';
import { imageResolver } from '../daemon/image-resolver.js';
import { LazySources } from '../daemon/lazy-sources.js';
import { OnDemand } from '../daemon/on-demand.js';
import { UpperBindingError, readBinding } from '../daemon/upper-binding.js';
import { lockDir } from '../daemon/dir-lock.js';
import { ChunkCache } from '../source/chunk-cache.js';
import { DecodedChunks } from '../source/decoded-chunks.js';
import { registrySettings, type RegistryOptions } from './registry-commands.js';
import { commitUpper } from '../image/commit-upper.js';
import type { CodecChoice } from '../image/layer-compression.js';
import { imageCreatedTime } from '../image/created-time.js';
import { LocalImage } from '../image/local-image.js';
import { localRef, openStore } from './image-commands.js';
import { UsageError } from './usage-error.js';
import type { HostPort } from './option-kinds.js';
import { p2pSettings, type P2pOptions } from './p2p-options.js';
import { withProgress } from './progress.js';
import { printResult, type GlobalOptions } from './run-command.js';
import { supernodeSet, warnFallback, warnRetry, type SupernodeClientOptions } from './supernode-options.js';

export interface ServeOptions extends RegistryOptions, SupernodeClientOptions, P2pOptions {
  _: string[];
  upper?: string;
  'read-only'?: boolean;
  socket?: string;
  listen?: HostPort;
  export?: string;
  'tls-cert'?: string;
  'tls-key'?: string;
  metrics?: HostPort;
  /** MB/s; the defaults of this and the next ones are in the command table. */
  'prefetch-rate': number;
  'record-trace'?: string;
  'cache-dir'?: string;
  /** GiB */
  'cache-size': number;
  'decoded-cache-mib': number;
  /** seconds */
  'io-timeout': number;
  control?: string;
  'state-dir'?: string;
}

/** `lazybd serve`: runs until SIGINT/SIGTERM, then flushes every upper and exits 0. */
export async function serveCommand(first: string | undefined, opts: ServeOptions): Promise<void> {
  const inputs = first === undefined ? [] : [first, ...opts._];
  if (inputs.length > 1 && (opts.upper || opts.export || opts['record-trace'])) {
    throw new UsageError('--upper, --export and --record-trace apply to a single image; add more writable disks with lazybd clone');
  }
  if (opts.socket && opts.listen) throw new UsageError('choose --socket or --listen, not both');
  if (Boolean(opts['tls-cert']) !== Boolean(opts['tls-key'])) throw new UsageError('--tls-cert and --tls-key go together');
  const p2p = p2pSettings(opts);
  const store = await openStore(opts);
  const settings = await registrySettings(opts);
  const supernodes = await supernodeSet(opts);
  const resolveImage = imageResolver(store, {
    registry: settings,
    supernodes,
    onFallback: warnFallback,
    onRetry: warnRetry,
    onStale: (ref, e) => process.stderr.write(`lazybd: ${e.message}; serving ${ref} from the local store and cache\n`),
  });
  // Made when the first lazily pulled image opens: a daemon of local images never contends for the cache.
  const cacheDir = opts['cache-dir'] ?? join(store.dir, 'chunk-cache');
  const decoded = new DecodedChunks(opts['decoded-cache-mib'] * 2 ** 20);
  const lazy = new OnDemand(async () => {
    const unlock = await lockDir(cacheDir, 'E_CACHE_IN_USE', 'chunk cache');
    try {
      return new LazySources({
        cache: await ChunkCache.open(cacheDir, { maxBytes: opts['cache-size'] * 2 ** 30 }),
        decoded,
        registry: settings,
        plainHttp: settings.plainHttp || undefined,
        ioTimeoutMs: opts['io-timeout'] * 1000,
        supernodes,
        // Loaded only when asked for: hyperswarm and its native UDP transport are not small.
        peers: p2p && (await import('../p2p/peer-swarm.js')).PeerSwarm.start(p2p),
        release: unlock,
      });
    } catch (e) {
      await unlock();
      throw e;
    }
  });
  let daemon: Daemon;
  const refs: string[] = [];
  try {
    for (const input of inputs) refs.push(await resolveImage(input));
    daemon = await Daemon.start({
      store,
      images: refs.map((ref) => ({ ref, exportName: opts.export, upperDir: opts.upper, readOnly: opts['read-only'], traceFile: opts['record-trace'] })),
      listen: opts.listen ?? { socket: opts.socket },
      tls: opts['tls-cert'] ? { certFile: opts['tls-cert'], keyFile: opts['tls-key']! } : undefined,
      lazy,
      resolveImage,
      prefetchRate: opts['prefetch-rate'] * 1e6,
      decoded,
      control: { socket: opts.control ?? defaultControlPath(), stateDir: opts['state-dir'] ?? defaultStateDir(store.dir), shared: opts['state-dir'] === undefined },
      metrics: opts.metrics,
      warn: (m) => process.stderr.write(`lazybd: warning: ${m}\n`),
    });
  } catch (e) {
    await lazy.close();
    if (!lazy.made) await supernodes?.close();
    throw e;
  }
  const uris = daemon.uris;
  printResult(opts, { exports: uris, control: daemon.controlSocket, pid: process.pid, metricsPort: daemon.metricsPort }, () =>
    [
      ...uris.map((u) => `serving ${u.export} at ${u.uri}`),
      `control socket ${daemon.controlSocket} (lazybd clone <image> <name>, lazybd status)`,
      ...(daemon.metricsPort ? [`metrics at http://${opts.metrics!.host}:${daemon.metricsPort}/metrics`] : []),
      ...(uris[0] ? [`attach with: nbdinfo '${uris[0].uri}'  |  qemu-img info '${uris[0].uri}'  |  lazybd mount ${refs[0]} <dir>`] : []),
    ].join('\n'),
  );
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await daemon.stop();
  if (!lazy.made) await supernodes?.close();
}

export async function commitCommand(upperDir: string, input: string, opts: GlobalOptions & { compress: CodecChoice }): Promise<void> {
  const ref = localRef(input);
  const created = imageCreatedTime();
  const binding = await readBinding(upperDir);
  if (!binding) throw new UpperBindingError('E_UPPER_UNBOUND', `${upperDir} is not a lazybd upper (no base.json)`);
  const store = await openStore(opts);
  const base = await LocalImage.open(store, binding.ref);
  try {
    if (base.manifestDescriptor.digest !== binding.manifestDigest) {
      throw new UpperBindingError('E_UPPER_BASE_MISMATCH', `${binding.ref} now names ${base.manifestDescriptor.digest}; the upper was made over ${binding.manifestDigest}`);
    }
    const r = await withProgress('commit', opts, (onProgress) => commitUpper(store, upperDir, base, ref, { created, compress: opts.compress, onProgress }));
    printResult(
      opts,
      { ref, base: binding.ref, manifest: r.manifest.digest, layer: r.layer.digest, layerSize: r.layer.size, extents: r.summary.extentCount, dataBytes: r.summary.dataBytes, zeroBytes: r.summary.zeroBytes },
      () => `committed ${upperDir} over ${binding.ref} as ${ref}: ${r.summary.extentCount} extents, layer ${r.layer.digest}`,
    );
  } finally {
    await base.close();
  }
}
