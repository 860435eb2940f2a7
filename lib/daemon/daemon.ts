import { readFile, writeFile, rm } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { CommitCloneRequest, CommitCloneResponse, DaemonStatus, ExportStatus, RemoveOptions, RemovedResponse, AddCloneRequest, AddExportRequest } from '../control/api.js';
import { ControlServer, type ControlHandler } from '../control/control-server.js';
import { announceDaemon } from '../control/daemon-directory.js';
import { LazybdError } from '../errors.js';
import { parseCodec } from '../format/chunk-codec.js';
import { commitOpenUpper } from '../image/commit-upper.js';
import { imageCreatedTime } from '../image/created-time.js';
import { DEFAULT_CODEC } from '../image/layer-compression.js';
import { isImageLocal } from '../image/local-image.js';
import { NbdServer } from '../nbd/server.js';
import { formatReference, parseReference } from '../oci/reference.js';
import { encodeTrace } from '../source/trace.js';
import type { OciStore } from '../store/oci-store.js';
import { DaemonState, checkCloneName } from './daemon-state.js';
import type { ImageResolver } from './image-resolver.js';
import { ImageExport } from './image-export.js';
import { InstrumentedDevice } from './instrumented-device.js';
import type { DecodedChunks } from '../source/decoded-chunks.js';
import type { LazySources } from './lazy-sources.js';
import { startMetricsEndpoint } from './metrics-endpoint.js';
import type { OnDemand } from './on-demand.js';
import { SharedImage } from './shared-image.js';
import { claimSocketPath, defaultSocketPath, nbdUri } from './socket-path.js';

export interface ServedImage {
  /** Store ref. */
  ref: string;
  /** NBD export name; default the ref itself. */
  exportName?: string;
  /** Directory of a writable upper; without one the export is read-only. */
  upperDir?: string;
  readOnly?: boolean;
  /** Write the first-read chunk order here when the daemon stops. */
  traceFile?: string;
}

export interface DaemonOptions {
  store: OciStore;
  /** Exports from the command line (not kept in the state directory). */
  images: ServedImage[];
  /** Unix socket (the default) or TCP; TCP binds 127.0.0.1 unless a host is given. */
  listen: { socket?: string } | { host?: string; port: number };
  tls?: { certFile: string; keyFile: string };
  /** Cache and remote sources for lazily pulled images, made when the first one is opened; closed with the daemon. */
  lazy: OnDemand<LazySources>;
  /** Names images added at run time (clones of registry refs are pulled lazily). */
  resolveImage: ImageResolver;
  /** Background completion of lazily pulled images, bytes/s; 0: off. */
  prefetchRate: number;
  /** Compressed chunks of local layers, decoded (the same one the lazy sources use). */
  decoded?: DecodedChunks;
  /**
   * Owner-only unix socket of the control API; `stateDir` keeps clones and added exports
   * across restarts. A `shared` state dir (the store's default) that another daemon owns is
   * left to it: this one serves what it was given, and making clones is refused.
   */
  control?: { socket: string; stateDir: string; shared?: boolean };
  /** Prometheus endpoint. */
  metrics?: { host: string; port: number };
  /** Loaded state had clones whose upper is gone, or that no longer open. */
  warn?: (message: string) => void;
}

interface Entry {
  name: string;
  kind: ExportStatus['kind'];
  exp: ImageExport;
  traceFile?: string;
  /** Added at run time: in the state directory. */
  kept: boolean;
}

export class DaemonError extends LazybdError {
  constructor(code: 'E_EXPORT_EXISTS' | 'E_EXPORT_NOT_FOUND' | 'E_CLONE_NOT_FOUND' | 'E_CLONE_IN_USE' | 'E_EXPORT_IN_USE' | 'E_CONTROL_DISABLED', message: string) {
    super(code, message, { exitStatus: 2 });
  }
}

/**
 * The lsmd-like process: images of the store exported over NBD. Exports come from the
 * command line and, through the control socket, at run time: images and clones (an export
 * with its own upper in the state directory). Exports of one image share one SharedImage,
 * so every clone reads through one cache and one set of fetches. Control requests run
 * one at a time. `stop()` drops clients, stops prefetch, writes traces, flushes every upper.
 */
export class Daemon implements ControlHandler {
  private readonly entries = new Map<string, Entry>();
  private readonly images = new Map<string, Promise<SharedImage>>();
  private readonly closers: (() => Promise<void>)[] = [];
  private control: ControlServer | undefined;
  private state: DaemonState | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private where: { path: string } | { host: string; port: number } = { path: '' };
  private tls = false;
  readonly startedAt = new Date().toISOString();

  private constructor(
    private readonly options: DaemonOptions,
    private readonly server: NbdServer,
    readonly metricsPort: number | undefined,
  ) {}

  get uris(): { export: string; uri: string }[] {
    return [...this.entries.values()].map((e) => ({ export: e.name, uri: this.uriOf(e.name) }));
  }

  get controlSocket(): string | undefined {
    return this.options.control?.socket;
  }

  static async start(options: DaemonOptions): Promise<Daemon> {
    const metrics = options.metrics && (await startMetricsEndpoint(options.metrics.host, options.metrics.port));
    const tls = options.tls && { cert: await readFile(options.tls.certFile), key: await readFile(options.tls.keyFile) };
    const first = options.images[0];
    const server = new NbdServer({ exports: [], defaultExport: first && (first.exportName ?? first.ref), tls });
    const daemon = new Daemon(options, server, metrics?.port);
    if (metrics) daemon.closers.push(() => metrics.close());
    daemon.tls = tls !== undefined;
    try {
      for (const spec of options.images) {
        const exp = await daemon.openExport(spec.ref, { upperDir: spec.upperDir, readOnly: spec.readOnly, recordTrace: spec.traceFile !== undefined });
        daemon.register({ name: spec.exportName ?? spec.ref, kind: 'image', exp, traceFile: spec.traceFile, kept: false });
      }
      if (options.control && (await DaemonState.exists(options.control.stateDir))) await daemon.restoreState(options.control);
      if ('port' in options.listen) {
        const host = options.listen.host ?? '127.0.0.1';
        const bound = await server.listen({ host, port: options.listen.port });
        daemon.where = { host, port: bound.port! };
      } else {
        const path = options.listen.socket ?? defaultSocketPath(first ? (first.exportName ?? first.ref) : 'lazybd');
        await claimSocketPath(path);
        await server.listen({ path });
        daemon.where = { path };
      }
      if (options.control) {
        await claimSocketPath(options.control.socket);
        daemon.control = await ControlServer.listen(options.control.socket, daemon);
        daemon.closers.push(await announceDaemon({ pid: process.pid, control: options.control.socket, startedAt: daemon.startedAt }));
      }
      return daemon;
    } catch (e) {
      await daemon.stop();
      throw e;
    }
  }

  // ControlHandler: every change runs alone, in order.

  status(): DaemonStatus {
    return { pid: process.pid, startedAt: this.startedAt, control: this.options.control?.socket ?? '', store: resolve(this.options.store.dir), exports: [...this.entries.values()].map((e) => this.statusOf(e)) };
  }

  addExport(request: AddExportRequest): Promise<ExportStatus> {
    return this.serialized(async () => {
      const ref = await this.options.resolveImage(request.image);
      const name = request.name ?? ref;
      this.checkFree(name);
      const state = await this.ownState();
      const exp = await this.openExport(ref, {});
      try {
        await state.addExport({ name, image: ref });
      } catch (e) {
        await exp.close();
        throw e;
      }
      return this.statusOf(this.register({ name, kind: 'image', exp, kept: true }));
    });
  }

  removeExport(name: string, options: RemoveOptions): Promise<RemovedResponse> {
    return this.serialized(async () => {
      const entry = this.entries.get(name);
      if (entry?.kind !== 'image') throw new DaemonError('E_EXPORT_NOT_FOUND', `no image export ${JSON.stringify(name)}${entry ? ' (it is a clone: lazybd clone rm)' : ''}`);
      await this.unregister(entry, options.force === true, 'E_EXPORT_IN_USE');
      if (entry.kept) await this.state!.removeExport(name);
      return { removed: name };
    });
  }

  addClone(request: AddCloneRequest): Promise<ExportStatus> {
    return this.serialized(async () => {
      checkCloneName(request.name);
      this.checkFree(request.name);
      const ref = await this.options.resolveImage(request.image);
      const state = await this.ownState();
      const upperDir = state.upperDir(request.name);
      const exp = await this.openExport(ref, { upperDir });
      try {
        await state.addClone({ name: request.name, image: ref, manifestDigest: exp.shared.manifestDigest, createdAt: new Date().toISOString() });
      } catch (e) {
        await exp.close();
        await rm(upperDir, { recursive: true, force: true });
        throw e;
      }
      return this.statusOf(this.register({ name: request.name, kind: 'clone', exp, kept: true }));
    });
  }

  removeClone(name: string, options: RemoveOptions): Promise<RemovedResponse> {
    return this.serialized(async () => {
      const entry = this.cloneNamed(name);
      await this.unregister(entry, options.force === true, 'E_CLONE_IN_USE');
      const keptUpper = await this.state!.removeClone(name, options.keep === true);
      return keptUpper ? { removed: name, keptUpper } : { removed: name };
    });
  }

  commitClone(name: string, request: CommitCloneRequest): Promise<CommitCloneResponse> {
    return this.serialized(async () => {
      const entry = this.cloneNamed(name);
      const parsed = parseReference(request.ref);
      if (parsed.kind !== 'local') throw new LazybdError('E_USAGE', `commit to a local name:tag, not ${request.ref} (push it afterwards)`, { exitStatus: 2 });
      const ref = formatReference(parsed);
      this.refuseIfConnected(entry, 'E_CLONE_IN_USE');
      // No client may attach while the upper is read: the export is away for the commit.
      this.server.removeExport(name);
      try {
        const { image } = entry.exp.shared;
        const compress = request.compress === undefined ? DEFAULT_CODEC : parseCodec(request.compress);
        const r = await commitOpenUpper(this.options.store, entry.exp.upper!, image, ref, { created: imageCreatedTime(), compress });
        return { ref, base: image.ref, manifest: r.manifest.digest, layer: r.layer.digest, layerSize: r.layer.size, extents: r.summary.extentCount, dataBytes: r.summary.dataBytes };
      } finally {
        this.server.addExport(this.nbdEntry(entry));
      }
    });
  }

  async stop(): Promise<void> {
    await this.control?.close();
    await this.server.close();
    await Promise.allSettled(this.closers.map((c) => c()));
    for (const e of this.entries.values()) {
      const trace = e.exp.shared.trace();
      if (e.traceFile && trace) await writeFile(e.traceFile, encodeTrace(trace));
    }
    await Promise.allSettled([...this.entries.values()].map((e) => e.exp.close()));
    await this.state?.close();
    await this.options.lazy.close();
  }

  // Internals

  private serialized<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async restoreState(control: NonNullable<DaemonOptions['control']>): Promise<void> {
    try {
      await this.restore(await this.ownState());
    } catch (e) {
      if (!control.shared || (e as LazybdError).code !== 'E_STATE_IN_USE') throw e;
      this.options.warn?.(`${control.stateDir} belongs to another running daemon: its clones are served there (no clones here)`);
    }
  }

  /** Brings back the clones and exports a previous run added; one that no longer opens is reported and kept on disk. */
  private async restore(state: DaemonState): Promise<void> {
    for (const name of state.dropped) this.options.warn?.(`clone ${name}: its upper is gone (moved away by clone rm --keep); dropped`);
    for (const c of state.clones) {
      try {
        const exp = await this.openExport(c.image, { upperDir: state.upperDir(c.name) });
        this.register({ name: c.name, kind: 'clone', exp, kept: true });
      } catch (e) {
        this.options.warn?.(`clone ${c.name} of ${c.image} not restored: ${(e as Error).message}; its upper stays in ${state.upperDir(c.name)}`);
      }
    }
    for (const x of state.exports) {
      try {
        this.register({ name: x.name, kind: 'image', exp: await this.openExport(x.image, {}), kept: true });
      } catch (e) {
        this.options.warn?.(`export ${x.name} of ${x.image} not restored: ${(e as Error).message}`);
      }
    }
  }

  private async ownState(): Promise<DaemonState> {
    if (!this.options.control) throw new DaemonError('E_CONTROL_DISABLED', 'this daemon runs without a state directory');
    return (this.state ??= await DaemonState.open(this.options.control.stateDir));
  }

  private async openExport(ref: string, o: { upperDir?: string; readOnly?: boolean; recordTrace?: boolean }): Promise<ImageExport> {
    return ImageExport.open(await this.sharedImage(ref, o.recordTrace === true), { upperDir: o.upperDir, readOnly: o.readOnly });
  }

  /** One SharedImage per store ref; a ref retagged since is opened anew (the old one lives on with its exports). */
  private async sharedImage(ref: string, recordTrace: boolean): Promise<SharedImage> {
    const { descriptor } = await this.options.store.resolve(ref);
    const key = `${ref}\n${descriptor.digest}`;
    let opening = this.images.get(key);
    if (!opening) {
      const lazy = (await isImageLocal(this.options.store, ref)) ? undefined : await this.options.lazy.get();
      opening = SharedImage.open(this.options.store, ref, { lazy, prefetchRate: this.options.prefetchRate, decoded: this.options.decoded, recordTrace, onClosed: () => this.images.delete(key) });
      this.images.set(key, opening);
      opening.catch(() => this.images.delete(key));
    }
    return opening;
  }

  private checkFree(name: string): void {
    if (this.entries.has(name)) throw new DaemonError('E_EXPORT_EXISTS', `an export named ${JSON.stringify(name)} exists`);
  }

  private cloneNamed(name: string): Entry {
    const entry = this.entries.get(name);
    if (entry?.kind !== 'clone') throw new DaemonError('E_CLONE_NOT_FOUND', `no clone ${JSON.stringify(name)}${entry ? ' (it is an image export: lazybd exports rm)' : ''}`);
    return entry;
  }

  private refuseIfConnected(entry: Entry, code: 'E_CLONE_IN_USE' | 'E_EXPORT_IN_USE'): void {
    const clients = this.server.clientsOf(entry.name);
    if (clients) throw new DaemonError(code, `${entry.name} has ${clients} NBD client${clients === 1 ? '' : 's'} connected (--force drops them)`);
  }

  private register(entry: Entry): Entry {
    this.entries.set(entry.name, entry);
    this.server.addExport(this.nbdEntry(entry));
    return entry;
  }

  private async unregister(entry: Entry, force: boolean, code: 'E_CLONE_IN_USE' | 'E_EXPORT_IN_USE'): Promise<void> {
    if (!force) this.refuseIfConnected(entry, code);
    this.server.removeExport(entry.name);
    this.server.disconnectClientsOf(entry.name);
    this.entries.delete(entry.name);
    await entry.exp.close();
  }

  private nbdEntry(e: Entry) {
    const device = this.metricsPort === undefined ? e.exp.device : new InstrumentedDevice(e.exp.device);
    return { name: e.name, description: `lazybd ${e.kind} of ${e.exp.shared.image.ref}`, device };
  }

  private uriOf(name: string): string {
    return nbdUri(name, this.where, this.tls);
  }

  private statusOf(e: Entry): ExportStatus {
    const { image } = e.exp.shared;
    return {
      export: e.name,
      kind: e.kind,
      ref: image.ref,
      manifestDigest: image.manifestDescriptor.digest,
      uri: this.uriOf(e.name),
      clients: this.server.clientsOf(e.name),
      ...e.exp.status(),
      peers: this.options.lazy.made?.peersFor(image.layers.map((l) => l.descriptor.digest)),
      ...(e.kind === 'clone' ? { upperDir: this.state!.upperDir(e.name) } : {}),
    };
  }
}
