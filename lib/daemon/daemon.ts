import { readFile, writeFile } from 'node:fs/promises';
import type { BlockDevice } from '../device/block-device.js';
import { NbdServer } from '../nbd/server.js';
import { encodeTrace } from '../source/trace.js';
import type { OciStore } from '../store/oci-store.js';
import { ImageExport, type ImageExportOptions } from './image-export.js';
import { InstrumentedDevice } from './instrumented-device.js';
import type { LazySources } from './lazy-sources.js';
import { startMetricsEndpoint } from './metrics-endpoint.js';
import { claimSocketPath, defaultSocketPath, nbdUri } from './socket-path.js';
import { StatusPublisher } from './status-file.js';

export interface ServedImage extends Omit<ImageExportOptions, 'lazy'> {
  ref: string;
  /** NBD export name; default the ref itself. */
  exportName?: string;
  /** Write the first-read chunk order here when the daemon stops. */
  traceFile?: string;
}

export interface DaemonOptions {
  store: OciStore;
  images: ServedImage[];
  /** Unix socket (the default) or TCP; TCP binds 127.0.0.1 unless a host is given. */
  listen: { socket?: string } | { host?: string; port: number };
  tls?: { certFile: string; keyFile: string };
  /** Cache and registry access for lazily pulled images. */
  lazy?: LazySources;
  /** Prometheus endpoint. */
  metrics?: { host: string; port: number };
  /** Publish status for `lazybd status` (default true). */
  publishStatus?: boolean;
}

interface Served {
  spec: ServedImage;
  name: string;
  exp: ImageExport;
  uri?: string;
}

/**
 * The lsmd-like process: images of the store exported over NBD, each with its own upper
 * and (when pulled lazily) prefetch. `stop()` drops clients, stops prefetch, writes
 * traces, then flushes and closes every upper.
 */
export class Daemon {
  private constructor(
    private readonly server: NbdServer,
    private readonly served: Served[],
    private readonly extras: { close(): Promise<void> }[],
    readonly metricsPort: number | undefined,
  ) {}

  get uris(): { export: string; uri: string }[] {
    return this.served.map((s) => ({ export: s.name, uri: s.uri! }));
  }

  static async start(options: DaemonOptions): Promise<Daemon> {
    const served: Served[] = [];
    const extras: { close(): Promise<void> }[] = [];
    try {
      for (const spec of options.images) {
        const exp = await ImageExport.open(options.store, spec.ref, { ...spec, lazy: options.lazy, recordTrace: spec.recordTrace || spec.traceFile !== undefined });
        served.push({ spec, name: spec.exportName ?? spec.ref, exp });
      }
      const metrics = options.metrics && (await startMetricsEndpoint(options.metrics.host, options.metrics.port));
      if (metrics) extras.push(metrics);
      const device = (s: Served): BlockDevice => (metrics ? new InstrumentedDevice(s.exp.device) : s.exp.device);
      const entries = served.map((s) => ({ name: s.name, description: `lazybd image ${s.spec.ref}`, device: device(s) }));
      const tls = options.tls && { cert: await readFile(options.tls.certFile), key: await readFile(options.tls.keyFile) };
      const server = new NbdServer({ exports: entries, defaultExport: entries[0]?.name, tls });
      let where: { path: string } | { host: string; port: number };
      if ('port' in options.listen) {
        const host = options.listen.host ?? '127.0.0.1';
        const bound = await server.listen({ host, port: options.listen.port });
        where = { host, port: bound.port! };
      } else {
        const path = options.listen.socket ?? defaultSocketPath(served[0]?.name ?? 'lazybd');
        await claimSocketPath(path);
        await server.listen({ path });
        where = { path };
      }
      for (const s of served) s.uri = nbdUri(s.name, where, tls !== undefined);
      const daemon = new Daemon(server, served, extras, metrics?.port);
      if (options.publishStatus !== false) {
        const startedAt = new Date().toISOString();
        const publisher = new StatusPublisher(() => ({
          pid: process.pid,
          startedAt,
          exports: served.map((s) => ({ export: s.name, ref: s.spec.ref, uri: s.uri!, ...s.exp.status(), peers: options.lazy?.peersFor(s.exp.image.layers.map((l) => l.descriptor.digest)) })),
        }));
        await publisher.start();
        extras.push({ close: () => publisher.stop() });
      }
      return daemon;
    } catch (e) {
      await Promise.allSettled([...served.map((s) => s.exp.close()), ...extras.map((x) => x.close())]);
      throw e;
    }
  }

  async stop(): Promise<void> {
    await this.server.close();
    await Promise.allSettled(this.extras.map((x) => x.close()));
    for (const s of this.served) {
      const trace = s.exp.trace();
      if (s.spec.traceFile && trace) await writeFile(s.spec.traceFile, encodeTrace(trace));
    }
    await Promise.allSettled(this.served.map((s) => s.exp.close()));
  }
}
