import { formatCodec, type CodecChoice } from '../format/chunk-codec.js';
import type { DaemonStatus, ExportStatus } from '../control/api.js';
import { ControlClient } from '../control/control-client.js';
import { liveDaemons, pickControlSocket } from '../control/daemon-directory.js';
import { mib } from './image-commands.js';
import { printResult, type GlobalOptions } from './run-command.js';

/*
 * Commands that talk to a running daemon over its control socket (lib/control/api.ts).
 * Without --daemon they address the only daemon running; with several, --daemon picks one.
 */

interface DaemonOptions extends GlobalOptions {
  daemon?: string;
}

async function withDaemon<T>(opts: DaemonOptions, fn: (client: ControlClient) => Promise<T>): Promise<T> {
  const client = new ControlClient(await pickControlSocket(opts.daemon));
  try {
    return await fn(client);
  } finally {
    await client.close();
  }
}

export async function cloneCommand(image: string, name: string, opts: DaemonOptions): Promise<void> {
  const clone = await withDaemon(opts, (c) => c.addClone({ image, name }));
  printResult(opts, clone, () => `clone ${clone.export} of ${clone.ref} at ${clone.uri}\n  upper ${clone.upperDir}`);
}

export async function clonesCommand(opts: DaemonOptions): Promise<void> {
  const clones = await withDaemon(opts, (c) => c.clones());
  printResult(opts, clones, () => (clones.length ? clones.map(describeExport).join('\n') : '(no clones)'));
}

export async function cloneRmCommand(name: string, opts: DaemonOptions & { force?: boolean; keep?: boolean }): Promise<void> {
  const r = await withDaemon(opts, (c) => c.removeClone(name, { force: opts.force, keep: opts.keep }));
  printResult(opts, r, () => `removed clone ${r.removed}${r.keptUpper ? `; its upper is kept in ${r.keptUpper}` : ''}`);
}

export async function cloneCommitCommand(name: string, ref: string, opts: DaemonOptions & { compress: CodecChoice }): Promise<void> {
  const r = await withDaemon(opts, (c) => c.commitClone(name, { ref, compress: formatCodec(opts.compress) }));
  printResult(opts, r, () => `committed clone ${name} over ${r.base} as ${r.ref}: ${r.extents} extents, layer ${r.layer}`);
}

export async function exportsCommand(opts: DaemonOptions): Promise<void> {
  const status = await withDaemon(opts, (c) => c.status());
  printResult(opts, status.exports, () => (status.exports.length ? status.exports.map(describeExport).join('\n') : '(no exports)'));
}

export async function exportsAddCommand(image: string, opts: DaemonOptions & { name?: string }): Promise<void> {
  const e = await withDaemon(opts, (c) => c.addExport({ image, name: opts.name }));
  printResult(opts, e, () => `serving ${e.export} at ${e.uri}`);
}

export async function exportsRmCommand(name: string, opts: DaemonOptions & { force?: boolean }): Promise<void> {
  const r = await withDaemon(opts, (c) => c.removeExport(name, { force: opts.force }));
  printResult(opts, r, () => `stopped serving ${r.removed}`);
}

/** `lazybd status`: each running daemon's exports (or the one --daemon names), asked over its control socket. */
export async function statusCommand(opts: DaemonOptions): Promise<void> {
  const sockets = opts.daemon ? [opts.daemon] : (await liveDaemons()).map((d) => d.control);
  const daemons: (DaemonStatus | { control: string; error: { code: string; message: string } })[] = [];
  for (const socket of sockets) {
    const client = new ControlClient(socket);
    try {
      daemons.push(await client.status());
    } catch (e) {
      // One daemon that does not answer must not hide the others.
      if (opts.daemon) throw e;
      const err = e as Error & { code?: string };
      daemons.push({ control: socket, error: { code: err.code ?? 'E_INTERNAL', message: err.message } });
    } finally {
      await client.close();
    }
  }
  printResult(opts, daemons, () => {
    if (daemons.length === 0) return '(no lazybd daemon running)';
    return daemons
      .map((d) => ('error' in d ? `daemon at ${d.control}: ${d.error.message} (${d.error.code})` : [`daemon pid ${d.pid} (control ${d.control}, up since ${d.startedAt})`, ...d.exports.map(describeExport)].join('\n')))
      .join('\n');
  });
}

function describeExport(e: ExportStatus): string {
  const pct = e.bytesTotal ? ((100 * e.bytesLocal) / e.bytesTotal).toFixed(1) : '100.0';
  return [
    `${e.export} (${e.kind} of ${e.ref}) ${e.uri}`,
    `  ${e.clients} client${e.clients === 1 ? '' : 's'}  local ${mib(e.bytesLocal)} of ${mib(e.bytesTotal)} (${pct}%)  ${e.writable ? 'writable' : 'read-only'}${e.upperDir ? `  upper ${e.upperDir}` : ''}`,
    `  sources: ${e.sources.join(' -> ')}${e.peers === undefined ? '' : `  (P2P: ${e.peers} peer${e.peers === 1 ? '' : 's'})`}`,
    `  prefetch: ${e.prefetch.state}${e.prefetch.rateBytesPerSec ? ` at ${(e.prefetch.rateBytesPerSec / 1e6).toFixed(1)} MB/s` : ''}`,
  ].join('\n');
}
