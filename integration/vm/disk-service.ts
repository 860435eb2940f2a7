// Writable disks for a host's VMs, each an NBD export over one lazybd image. `ServeUpperDisks`
// is what lazybd offers without clones: one `serve --upper` daemon per disk, each with its own
// store and chunk cache (a cache has one owner), so K disks fetch K times.
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
  /** The disk's upper, for `lazybd commit` once its daemon has stopped (serve-upper only). */
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
}

interface ServeReady {
  exports: { export: string; uri: string }[];
  metricsPort?: number;
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
      ['serve', this.o.ref, '--json', '--prefetch-rate', '0', '--upper', disk.upperDir!, '--socket', socket, '--export', name,
        '--cache-dir', join(dir, 'cache'), '--metrics', `${this.o.host.address}:0`, ...(disk.traceFile ? ['--record-trace', disk.traceFile] : []), ...this.o.serveArgs],
      { LAZYBD_STORE: join(dir, 'store'), XDG_RUNTIME_DIR: dir },
    );
    const member: Member = { disk, daemon };
    this.members.push(member);
    const ready = await firstJsonLine<ServeReady>(daemon, `serve of disk ${name}`, this.o.timeoutMs);
    disk.uri = ready.exports[0]!.uri;
    member.metricsPort = ready.metricsPort;
    return disk;
  }

  async sourceBytes(): Promise<Record<string, number>> {
    const out: Record<string, number> = {};
    for (const m of this.members) {
      const text = m.metricsPort && (await this.o.host.get(`http://${this.o.host.address}:${m.metricsPort}/metrics`));
      if (!text) throw new Error(`the metrics of disk ${m.disk.name}'s daemon did not answer`);
      for (const [source, bytes] of Object.entries(metricByLabel(text, SOURCE_BYTES, 'source'))) out[source] = (out[source] ?? 0) + bytes;
    }
    return out;
  }

  async cpuSeconds(): Promise<number> {
    return (await Promise.all(this.members.map((m) => cpuSeconds(m.daemon.child.pid!)))).reduce((a, b) => a + b, 0);
  }

  async stop(): Promise<void> {
    await Promise.all(this.members.map((m) => m.daemon.stop(30_000)));
  }
}

/** Sum of remote bytes over sources. */
export function remoteBytes(bySource: Record<string, number>): number {
  return Object.values(bySource).reduce((a, b) => a + b, 0);
}
