// Writable disks for a host's VMs, each an NBD export over one lazybd image. `CloneDisks`: one
// daemon a host, a clone a disk, all sharing the daemon's chunk cache and fetches.
// `ServeUpperDisks`, what lazybd offered before clones: one `serve --upper` daemon a disk, each
// with its own store and chunk cache (a cache has one owner), so K disks fetch K times.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { metricByLabel } from '../support/prometheus-text.js';
import type { Owned } from '../support/processes.js';
import { cpuSeconds } from '../support/proc-stat.js';
import { firstJsonLine } from '../scale/lazybd-process.js';
import type { LazybdHost } from './lazybd-host.js';

export const SOURCE_BYTES = 'lazybd_source_bytes_total';

export interface VmDisk {
  name: string;
  socket: string;
  exportName: string;
  /** `nbd+unix:///NAME?socket=…` */
  uri: string;
  /** The disk's upper (for serve-upper, `lazybd commit` takes it once its daemon has stopped). */
  upperDir?: string;
  /** The order of first chunk reads, written when its daemon stops (with `recordTrace`). */
  traceFile?: string;
}

export interface DiskService {
  readonly kind: 'serve-upper' | 'clones';
  /** A fresh writable disk over the image, exported as `name`. */
  add(name: string): Promise<VmDisk>;
  /** Bytes the host's daemons received from each remote source (registry, supernode, peer), from their metrics. */
  sourceBytes(): Promise<Record<string, number>>;
  /** CPU seconds the host's daemons have used so far: what serving the disks costs the host. */
  cpuSeconds(): Promise<number>;
  /** Stops the daemons (their uppers are flushed). */
  stop(): Promise<void>;
}

export interface DiskServiceOptions {
  host: LazybdHost;
  /** The image: a registry ref or a local name:tag. */
  ref: string;
  dir: string;
  /** More `serve` arguments: registry options, supernodes, P2P. */
  serveArgs: string[];
  /** Bound on a daemon's start. */
  timeoutMs: number;
  /** serve --record-trace for every disk (serve-upper only). */
  recordTrace?: boolean;
  /** serve --prefetch-rate, MB/s: background completion, the image's trace first (default 0: off). */
  prefetchRate?: number;
}

interface ServeReady {
  exports: { export: string; uri: string }[];
  metricsPort?: number;
}

/** Sums `lazybd_source_bytes_total` by source over the daemons whose metrics ports are given. */
async function daemonSourceBytes(host: LazybdHost, ports: (number | undefined)[]): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const port of ports) {
    const text = port && (await host.get(`http://${host.address}:${port}/metrics`));
    if (!text) throw new Error(`the metrics of a lazybd daemon on ${host.address} did not answer`);
    for (const [source, bytes] of Object.entries(metricByLabel(text, SOURCE_BYTES, 'source'))) out[source] = (out[source] ?? 0) + bytes;
  }
  return out;
}

function sumCpuSeconds(daemons: Owned[]): Promise<number> {
  return Promise.all(daemons.map((d) => cpuSeconds(d.child.pid!))).then((s) => s.reduce((a, b) => a + b, 0));
}

/** What `lazybd clone --json` prints. */
interface CloneAdded {
  export: string;
  uri: string;
  upperDir: string;
}

export class CloneDisks implements DiskService {
  readonly kind = 'clones';
  private daemon?: Owned;
  private started?: Promise<ServeReady>;
  readonly control: string;
  readonly socket: string;

  constructor(private readonly o: DiskServiceOptions) {
    this.control = join(o.dir, 'control.sock');
    this.socket = join(o.dir, 'nbd.sock');
  }

  /** The host's daemon: no image of its own, clones added over its control socket. */
  private async start(): Promise<ServeReady> {
    await mkdir(this.o.dir, { recursive: true });
    this.daemon = this.o.host.spawn(
      ['serve', '--json', '--prefetch-rate', String(this.o.prefetchRate ?? 0), '--control', this.control, '--state-dir', join(this.o.dir, 'state'), '--socket', this.socket,
        '--cache-dir', join(this.o.dir, 'cache'), '--metrics', `${this.o.host.address}:0`, ...this.o.serveArgs],
      this.env(),
    );
    return serveReady(this.daemon, `the clone daemon on ${this.o.host.address}`, this.o.timeoutMs);
  }

  private env(): NodeJS.ProcessEnv {
    return { LAZYBD_STORE: join(this.o.dir, 'store'), XDG_RUNTIME_DIR: this.o.dir };
  }

  /** A clone of the service's image, or of `ref` (another image the daemon can reach: a committed clone, say). */
  async add(name: string, ref = this.o.ref): Promise<VmDisk> {
    await (this.started ??= this.start());
    const out = await this.o.host.run(['clone', ref, name, '--daemon', this.control, '--json'], this.env(), this.o.timeoutMs);
    const clone = JSON.parse(out.split('\n').find((l) => l.startsWith('{'))!) as CloneAdded;
    return { name, socket: this.socket, exportName: clone.export, uri: clone.uri, upperDir: clone.upperDir };
  }

  /** `lazybd clone commit`: the clone's upper becomes the local image `ref` on this host's daemon. */
  async commit(name: string, ref: string): Promise<void> {
    await this.o.host.run(['clone', 'commit', name, ref, '--daemon', this.control, '--json'], this.env(), this.o.timeoutMs);
  }

  async sourceBytes(): Promise<Record<string, number>> {
    return daemonSourceBytes(this.o.host, [(await this.started)?.metricsPort]);
  }

  cpuSeconds(): Promise<number> {
    return sumCpuSeconds(this.daemon ? [this.daemon] : []);
  }

  async stop(): Promise<void> {
    await this.daemon?.stop(30_000);
  }
}

/** The daemon's first JSON line, which must say where it serves (a JSON error line would not). */
async function serveReady(daemon: Owned, what: string, timeoutMs: number): Promise<ServeReady> {
  const ready = await firstJsonLine<Partial<ServeReady>>(daemon, what, timeoutMs);
  if (!Array.isArray(ready.exports)) throw new Error(`${what} printed ${JSON.stringify(ready)} instead of its exports:\n${daemon.output().slice(-2000)}`);
  return ready as ServeReady;
}

interface Member {
  disk: VmDisk;
  daemon: Owned;
  metricsPort?: number;
}

export class ServeUpperDisks implements DiskService {
  readonly kind = 'serve-upper';
  private readonly members: Member[] = [];

  constructor(private readonly o: DiskServiceOptions) {}

  async add(name: string): Promise<VmDisk> {
    const dir = join(this.o.dir, name);
    await mkdir(dir, { recursive: true });
    const socket = join(dir, 'nbd.sock');
    const disk: VmDisk = { name, socket, exportName: name, uri: '', upperDir: join(dir, 'upper'), ...(this.o.recordTrace ? { traceFile: join(dir, 'trace.json') } : {}) };
    const daemon = this.o.host.spawn(
      ['serve', this.o.ref, '--json', '--prefetch-rate', String(this.o.prefetchRate ?? 0), '--upper', disk.upperDir!, '--socket', socket, '--export', name,
        '--cache-dir', join(dir, 'cache'), '--metrics', `${this.o.host.address}:0`, ...(disk.traceFile ? ['--record-trace', disk.traceFile] : []), ...this.o.serveArgs],
      { LAZYBD_STORE: join(dir, 'store'), XDG_RUNTIME_DIR: dir },
    );
    const member: Member = { disk, daemon };
    this.members.push(member);
    const ready = await serveReady(daemon, `serve of disk ${name}`, this.o.timeoutMs);
    disk.uri = ready.exports[0]!.uri;
    member.metricsPort = ready.metricsPort;
    return disk;
  }

  sourceBytes(): Promise<Record<string, number>> {
    return daemonSourceBytes(this.o.host, this.members.map((m) => m.metricsPort));
  }

  cpuSeconds(): Promise<number> {
    return sumCpuSeconds(this.members.map((m) => m.daemon));
  }

  async stop(): Promise<void> {
    await Promise.all(this.members.map((m) => m.daemon.stop(30_000)));
  }
}

/** Sum of remote bytes over sources. */
export function remoteBytes(bySource: Record<string, number>): number {
  return Object.values(bySource).reduce((a, b) => a + b, 0);
}
