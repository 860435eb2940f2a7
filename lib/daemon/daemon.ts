import { readFile } from 'node:fs/promises';
import { NbdServer } from '../nbd/server.js';
import type { OciStore } from '../store/oci-store.js';
import { ImageExport, type ImageExportOptions } from './image-export.js';
import { claimSocketPath, defaultSocketPath, nbdUri } from './socket-path.js';

export interface ServedImage extends ImageExportOptions {
  ref: string;
  /** NBD export name; default the ref itself. */
  exportName?: string;
}

export interface DaemonOptions {
  store: OciStore;
  images: ServedImage[];
  /** Unix socket (the default) or TCP; TCP binds 127.0.0.1 unless a host is given. */
  listen: { socket?: string } | { host?: string; port: number };
  tls?: { certFile: string; keyFile: string };
}

/**
 * The lsmd-like process: images of the store exported over NBD, each with its own
 * upper. `stop()` drops clients, then flushes and closes every upper.
 */
export class Daemon {
  private constructor(
    private readonly server: NbdServer,
    private readonly exports: ImageExport[],
    readonly uris: { export: string; uri: string }[],
  ) {}

  static async start(options: DaemonOptions): Promise<Daemon> {
    const opened: ImageExport[] = [];
    try {
      const entries = [];
      for (const img of options.images) {
        const exp = await ImageExport.open(options.store, img.ref, img);
        opened.push(exp);
        entries.push({ name: img.exportName ?? img.ref, description: `lazybd image ${img.ref}`, device: exp.device });
      }
      const tls = options.tls && { cert: await readFile(options.tls.certFile), key: await readFile(options.tls.keyFile) };
      const server = new NbdServer({ exports: entries, defaultExport: entries[0]?.name, tls });
      const names = entries.map((e) => e.name);
      let where: { path: string } | { host: string; port: number };
      if ('port' in options.listen) {
        const host = options.listen.host ?? '127.0.0.1';
        const bound = await server.listen({ host, port: options.listen.port });
        where = { host, port: bound.port! };
      } else {
        const path = options.listen.socket ?? defaultSocketPath(names[0] ?? 'lazybd');
        await claimSocketPath(path);
        await server.listen({ path });
        where = { path };
      }
      return new Daemon(server, opened, names.map((n) => ({ export: n, uri: nbdUri(n, where, tls !== undefined) })));
    } catch (e) {
      await Promise.allSettled(opened.map((x) => x.close()));
      throw e;
    }
  }

  async stop(): Promise<void> {
    await this.server.close();
    await Promise.allSettled(this.exports.map((x) => x.close()));
  }
}
