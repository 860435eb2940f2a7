import { Daemon, type ServedImage } from '../daemon/daemon.js';
import { UpperBindingError, readBinding } from '../daemon/upper-binding.js';
import { lockUpper } from '../daemon/upper-lock.js';
import { commitUpper } from '../image/commit-upper.js';
import { LocalImage } from '../image/local-image.js';
import { UsageError, localRef, openStore } from './image-commands.js';
import { withProgress } from './progress.js';
import { printResult, type GlobalOptions } from './run-command.js';

export interface ServeOptions extends GlobalOptions {
  _: string[];
  upper?: string;
  'read-only'?: boolean;
  socket?: string;
  listen?: string;
  export?: string;
  'tls-cert'?: string;
  'tls-key'?: string;
}

function parseListen(value: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(value) ?? /^()()(\d+)$/.exec(value);
  if (!m) throw new UsageError(`--listen takes HOST:PORT or PORT, not ${value}`);
  return { host: m[1] || m[2] || '127.0.0.1', port: Number(m[3]) };
}

/** `lazybd serve`: runs until SIGINT/SIGTERM, then flushes every upper and exits 0. */
export async function serveCommand(first: string, opts: ServeOptions): Promise<void> {
  const refs = [first, ...opts._].map(localRef);
  if (refs.length > 1 && (opts.upper || opts.export)) throw new UsageError('--upper and --export apply to a single image; serve several images read-only, or run one daemon per writable image');
  if (opts.socket && opts.listen) throw new UsageError('choose --socket or --listen, not both');
  if (Boolean(opts['tls-cert']) !== Boolean(opts['tls-key'])) throw new UsageError('--tls-cert and --tls-key go together');
  const images: ServedImage[] = refs.map((ref) => ({ ref, exportName: opts.export, upperDir: opts.upper, readOnly: opts['read-only'] }));
  const daemon = await Daemon.start({
    store: await openStore(opts),
    images,
    listen: opts.listen ? parseListen(opts.listen) : { socket: opts.socket },
    tls: opts['tls-cert'] ? { certFile: opts['tls-cert'], keyFile: opts['tls-key']! } : undefined,
  });
  printResult(opts, { exports: daemon.uris, pid: process.pid }, () =>
    [
      ...daemon.uris.map((u) => `serving ${u.export} at ${u.uri}`),
      `attach with: nbdinfo '${daemon.uris[0]!.uri}'  |  qemu-img info '${daemon.uris[0]!.uri}'  |  lazybd mount ${refs[0]} <dir>`,
    ].join('\n'),
  );
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  await daemon.stop();
}

export async function commitCommand(upperDir: string, input: string, opts: GlobalOptions): Promise<void> {
  const ref = localRef(input);
  const binding = await readBinding(upperDir);
  if (!binding) throw new UpperBindingError('E_UPPER_UNBOUND', `${upperDir} is not a lazybd upper (no base.json)`);
  const store = await openStore(opts);
  const unlock = await lockUpper(upperDir);
  try {
    const base = await LocalImage.open(store, binding.ref);
    try {
      if (base.manifestDescriptor.digest !== binding.manifestDigest) {
        throw new UpperBindingError('E_UPPER_BASE_MISMATCH', `${binding.ref} now names ${base.manifestDescriptor.digest}; the upper was made over ${binding.manifestDigest}`);
      }
      const r = await withProgress('commit', opts, (onProgress) => commitUpper(store, upperDir, base, ref, onProgress));
      printResult(
        opts,
        { ref, base: binding.ref, manifest: r.manifest.digest, layer: r.layer.digest, layerSize: r.layer.size, extents: r.summary.extentCount, dataBytes: r.summary.dataBytes, zeroBytes: r.summary.zeroBytes },
        () => `committed ${upperDir} over ${binding.ref} as ${ref}: ${r.summary.extentCount} extents, layer ${r.layer.digest}`,
      );
    } finally {
      await base.close();
    }
  } finally {
    await unlock();
  }
}
