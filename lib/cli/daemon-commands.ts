import { join } from 'node:path';
import { Daemon } from '../daemon/daemon.js';
import { LazySources } from '../daemon/lazy-sources.js';
import { UpperBindingError, readBinding } from '../daemon/upper-binding.js';
import { lockDir } from '../daemon/dir-lock.js';
import { pullImageFrom } from '../image/pull-image.js';
import { formatReference, parseReference } from '../oci/reference.js';
import { isRetryable } from '../registry/errors.js';
import { ChunkCache } from '../source/chunk-cache.js';
import type { OciStore } from '../store/oci-store.js';
import { RegistryClient } from '../registry/registry-client.js';
import { registrySettings, type RegistryOptions, type RegistrySettings } from './registry-commands.js';
import { commitUpper } from '../image/commit-upper.js';
import { imageCreatedTime } from '../image/created-time.js';
import { LocalImage, isImageLocal } from '../image/local-image.js';
import { localRef, openStore } from './image-commands.js';
import { UsageError } from './usage-error.js';
import type { HostPort } from './option-kinds.js';
import { p2pSettings, type P2pOptions } from './p2p-options.js';
import { withProgress } from './progress.js';
import { printResult, type GlobalOptions } from './run-command.js';
import { supernodeSet, warnFallback, type SupernodeClientOptions } from './supernode-options.js';
import type { SupernodeSet } from '../supernode/supernode-source.js';

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
  /** seconds */
  'io-timeout': number;
}

/**
 * Store refs for the images to serve: local names as they are; registry refs are pulled
 * (metadata only) first, and when the registry cannot be reached an earlier pull is
 * served from what the store and cache hold.
 */
async function resolveServeRefs(store: OciStore, inputs: string[], settings: RegistrySettings, supernodes: SupernodeSet | undefined): Promise<string[]> {
  const refs: string[] = [];
  for (const input of inputs) {
    const parsed = parseReference(input);
    if (parsed.kind === 'local') {
      refs.push(formatReference(parsed));
      continue;
    }
    const ref = formatReference(parsed);
    const client = new RegistryClient({ ...settings, registry: parsed.registry });
    try {
      await pullImageFrom(store, [...(supernodes?.clientsFor(parsed.registry) ?? []), client], parsed, ref, { plainHttp: settings.plainHttp, onFallback: warnFallback });
    } catch (e) {
      const known = (await store.list()).some((t) => t.ref === ref);
      if (!known || !isRetryable(e)) throw e;
      process.stderr.write(`lazybd: ${(e as Error).message}; serving ${ref} from the local store and cache\n`);
    } finally {
      await client.close();
    }
    refs.push(ref);
  }
  return refs;
}

/** `lazybd serve`: runs until SIGINT/SIGTERM, then flushes every upper and exits 0. */
export async function serveCommand(first: string, opts: ServeOptions): Promise<void> {
  const inputs = [first, ...opts._];
  if (inputs.length > 1 && (opts.upper || opts.export || opts['record-trace'])) {
    throw new UsageError('--upper, --export and --record-trace apply to a single image; run one daemon per writable image');
  }
  if (opts.socket && opts.listen) throw new UsageError('choose --socket or --listen, not both');
  if (Boolean(opts['tls-cert']) !== Boolean(opts['tls-key'])) throw new UsageError('--tls-cert and --tls-key go together');
  const p2p = p2pSettings(opts);
  const store = await openStore(opts);
  const settings = await registrySettings(opts);
  const supernodes = await supernodeSet(opts);
  const refs = await resolveServeRefs(store, inputs, settings, supernodes);
  // Images whose blobs are all local need no cache: their daemons do not contend for it.
  let lazy: LazySources | undefined;
  let unlockCache = async () => undefined as void;
  if (!(await Promise.all(refs.map((r) => isImageLocal(store, r)))).every(Boolean)) {
    const cacheDir = opts['cache-dir'] ?? join(store.dir, 'chunk-cache');
    unlockCache = await lockDir(cacheDir, 'E_CACHE_IN_USE', 'chunk cache');
    lazy = new LazySources({
      cache: await ChunkCache.open(cacheDir, { maxBytes: opts['cache-size'] * 2 ** 30 }),
      registry: settings,
      plainHttp: settings.plainHttp || undefined,
      ioTimeoutMs: opts['io-timeout'] * 1000,
      supernodes,
      // Loaded only when asked for: hyperswarm and its native UDP transport are not small.
      peers: p2p && (await import('../p2p/peer-swarm.js')).PeerSwarm.start(p2p),
    });
  } else {
    await supernodes?.close();
  }
  let daemon: Daemon;
  try {
    daemon = await Daemon.start({
      store,
      images: refs.map((ref) => ({
        ref,
        exportName: opts.export,
        upperDir: opts.upper,
        readOnly: opts['read-only'],
        prefetchRate: opts['prefetch-rate'] * 1e6,
        traceFile: opts['record-trace'],
      })),
      listen: opts.listen ?? { socket: opts.socket },
      tls: opts['tls-cert'] ? { certFile: opts['tls-cert'], keyFile: opts['tls-key']! } : undefined,
      lazy,
      metrics: opts.metrics,
    });
  } catch (e) {
    await lazy?.close();
    await unlockCache();
    throw e;
  }
  printResult(opts, { exports: daemon.uris, pid: process.pid, metricsPort: daemon.metricsPort }, () =>
    [
      ...daemon.uris.map((u) => `serving ${u.export} at ${u.uri}`),
      ...(daemon.metricsPort ? [`metrics at http://${opts.metrics!.host}:${daemon.metricsPort}/metrics`] : []),
      `attach with: nbdinfo '${daemon.uris[0]!.uri}'  |  qemu-img info '${daemon.uris[0]!.uri}'  |  lazybd mount ${refs[0]} <dir>`,
    ].join('\n'),
  );
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await daemon.stop();
  await lazy?.close();
  await unlockCache();
}

export async function commitCommand(upperDir: string, input: string, opts: GlobalOptions): Promise<void> {
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
    const r = await withProgress('commit', opts, (onProgress) => commitUpper(store, upperDir, base, ref, { created, onProgress }));
    printResult(
      opts,
      { ref, base: binding.ref, manifest: r.manifest.digest, layer: r.layer.digest, layerSize: r.layer.size, extents: r.summary.extentCount, dataBytes: r.summary.dataBytes, zeroBytes: r.summary.zeroBytes },
      () => `committed ${upperDir} over ${binding.ref} as ${ref}: ${r.summary.extentCount} extents, layer ${r.layer.digest}`,
    );
  } finally {
    await base.close();
  }
}
