// Figures of a VM fleet run: the single-VM reference (local raw file against a lazy boot, the
// boot's working set), then per K VMs a host: boot times from local qcow2 overlays and, per mode,
// from lazybd disks, with what the registry, the supernodes and each host sent or received.
import { markdownTable as table, percentile } from '../scale/report.js';

export interface VmOutcome {
  host: string;
  vm: string;
  /** From qemu's start to the guest's marker; NaN when it failed. */
  bootMs: number;
  /** The guest kernel's uptime at the marker. */
  guestUptimeS: number;
  failure?: string;
}

export interface BootStats {
  booted: number;
  vms: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

export interface ReferenceRound {
  /** One VM from a local raw copy of the image. */
  localRawMs: number;
  /** One VM from `lazybd serve <registry ref> --upper` on a cold cache. */
  lazyMs: number;
  /** tx bytes of the registry's link during the lazy boot. */
  registryEgressBytes: number;
  /** What the daemon's metrics say it received, by source. */
  sourceBytes: Record<string, number>;
  /** Distinct chunks the boot read (its recorded trace), in bytes: the least a lazy boot must fetch. */
  workingSetBytes: number;
  traceChunks: number;
  /** CPU seconds the serving daemon used (start, pull, the boot's reads). */
  daemonCpuS: number;
}

export interface QcowPhase {
  round: number;
  vmsPerHost: number;
  stats: BootStats;
  vms: VmOutcome[];
}

export interface LazyPhase {
  round: number;
  mode: string;
  vmsPerHost: number;
  /** How the disks were made: clones on one daemon a host, or one serve --upper daemon a disk. */
  disks: 'clones' | 'serve-upper';
  stats: BootStats;
  vms: VmOutcome[];
  /** Starting the disk daemons and adding the disks, before the VMs start. */
  prepareMs: number;
  registryEgressBytes: number;
  /** tx bytes of the supernodes' links; null without supernodes. */
  supernodeEgressBytes: number | null;
  /** Per host: rx bytes of its link, its daemons' bytes by source and CPU seconds. */
  hosts: { host: string; rxBytes: number; sourceBytes: Record<string, number>; daemonCpuS: number }[];
  /** Preheat before the VMs started (supernode+preheat), ms. */
  preparationMs: number;
}

export interface VmFleetReport {
  run: string;
  machine: { cpus: number; cpuModel: string; memoryGiB: number; kernel: string; node: string; qemu: string; /** 1-minute load average at the start and the end. */ loadAverage: [number, number] };
  topology: { hosts: number; supernodes: number; registryMbit: number; linkMbit: number; rttUs: number; delayApplied: boolean; memoryMiB: number; accel: 'tcg' | 'kvm'; /** MB/s, 0: none. */ prefetchRate: number };
  image: { kernelVersion: string; virtualBytes: number; dataBytes: number; layerBytes: number; chunkSize: number; buildSeconds: number; builtNow: boolean };
  reference: ReferenceRound[];
  qcow2: QcowPhase[];
  lazy: LazyPhase[];
  /** Phases that failed as a whole (a VM that fails is a VmOutcome with `failure`). */
  errors: { phase: string; message: string }[];
  wallSeconds: number;
}

export function bootStats(vms: VmOutcome[]): BootStats {
  const ok = vms.filter((v) => !v.failure).map((v) => v.bootMs);
  return { booted: ok.length, vms: vms.length, p50Ms: percentile(ok, 50), p99Ms: percentile(ok, 99), maxMs: percentile(ok, 100) };
}

/** The best (smallest) of the rounds' values. */
export function best(values: number[]): number {
  return values.length ? Math.min(...values) : NaN;
}

/** The median of the rounds' ratios a[i] / b[i]: each round's pair ran back to back, so its ratio is what the load of the moment left comparable. */
export function medianRatio(a: number[], b: number[]): number {
  const ratios = a.map((x, i) => x / b[i]!).filter(Number.isFinite).sort((x, y) => x - y);
  return ratios.length ? ratios[Math.floor((ratios.length - 1) / 2)]! : NaN;
}

const mib = (b: number) => (b / 2 ** 20).toFixed(1);
const sec = (ms: number) => (Number.isNaN(ms) ? '-' : (ms / 1000).toFixed(1));
const ratio = (a: number, b: number) => (Number.isFinite(a / b) ? (a / b).toFixed(2) : '-');

export function formatVmTable(r: VmFleetReport): string {
  const { machine: mc, topology: t, image: im } = r;
  const out = [
    `machine: ${mc.cpus} CPUs ${mc.cpuModel}, ${mc.memoryGiB} GiB, Linux ${mc.kernel}, node ${mc.node}, ${mc.qemu}; load average ${mc.loadAverage[0].toFixed(1)} at the start, ${mc.loadAverage[1].toFixed(1)} at the end`,
    `topology: ${t.hosts} host(s), ${t.supernodes} supernode(s); registry link ${t.registryMbit} Mbit/s, other links ${t.linkMbit} Mbit/s; RTT ${t.delayApplied ? `${t.rttUs} µs added` : 'not added (kernel lacks sch_netem)'}; ${t.memoryMiB} MiB a VM, 1 vCPU, ${t.accel.toUpperCase()}; fleet daemons ${t.prefetchRate ? `prefetch the boot's trace, then the image, at ${t.prefetchRate} MB/s` : 'do not prefetch'}`,
    `image: Debian ${im.kernelVersion}, ${mib(im.virtualBytes)} MiB virtual, ${mib(im.dataBytes)} MiB data, chunks ${im.chunkSize / 1024} KiB; built in ${im.buildSeconds.toFixed(0)} s${im.builtNow ? ' by this run' : ' (cached)'}`,
  ];
  if (r.reference.length) {
    const rr = r.reference;
    out.push('', `single VM, ${rr.length} round(s): best times, ratios the median of the rounds' own:`);
    out.push(...table(
      ['local raw s', 'lazybd serve s', '× local raw', 'registry egress MiB', 'working set MiB', '× working set', 'chunks read', 'daemon CPU s'],
      [[sec(best(rr.map((x) => x.localRawMs))), sec(best(rr.map((x) => x.lazyMs))), medianRatio(rr.map((x) => x.lazyMs), rr.map((x) => x.localRawMs)).toFixed(2),
        mib(best(rr.map((x) => x.registryEgressBytes))), mib(best(rr.map((x) => x.workingSetBytes))), ratio(best(rr.map((x) => x.registryEgressBytes)), best(rr.map((x) => x.workingSetBytes))), String(best(rr.map((x) => x.traceChunks))),
        best(rr.map((x) => x.daemonCpuS)).toFixed(1)]],
    ));
  }
  const rounds = Math.max(1, ...r.lazy.map((l) => l.round + 1));
  const qcowOf = (k: number) => r.qcow2.filter((q) => q.vmsPerHost === k);
  const groups = new Map<string, LazyPhase[]>();
  for (const l of r.lazy) groups.set(`${l.mode} ${l.vmsPerHost}`, [...(groups.get(`${l.mode} ${l.vmsPerHost}`) ?? []), l]);
  const booted = (ps: { stats: BootStats }[]) => `${ps.reduce((n, p) => n + p.stats.booted, 0)}/${ps.reduce((n, p) => n + p.stats.vms, 0)}`;
  out.push('', `all VMs start at once; boot = qemu start to the guest's marker; ${rounds} round(s): best p50/p99, the median of the rounds' p99 ratios, the largest egress:`);
  out.push(...table(
    ['mode', 'K a host', 'VMs', 'disks', 'booted', 'boot p50 s', 'p99 s', 'qcow2 booted', 'qcow2 p50 s', 'qcow2 p99 s', 'p99 × qcow2', 'registry egress MiB', 'supernode egress MiB', 'rx MiB per host', 'daemon CPU s per host'],
    [...groups.values()].map((ls) => {
      const l = ls[0]!;
      const qs = qcowOf(l.vmsPerHost);
      const qp99ByRound = ls.map((x) => qs.find((q) => q.round === x.round)?.stats.p99Ms ?? NaN);
      const worst = ls.reduce((a, b) => (b.registryEgressBytes > a.registryEgressBytes ? b : a));
      return [l.mode, String(l.vmsPerHost), String(l.stats.vms), l.disks, booted(ls), sec(best(ls.map((x) => x.stats.p50Ms))), sec(best(ls.map((x) => x.stats.p99Ms))),
        booted(qs), sec(best(qs.map((q) => q.stats.p50Ms))), sec(best(qs.map((q) => q.stats.p99Ms))), medianRatio(ls.map((x) => x.stats.p99Ms), qp99ByRound).toFixed(2),
        mib(worst.registryEgressBytes), worst.supernodeEgressBytes === null ? '-' : mib(worst.supernodeEgressBytes), worst.hosts.map((h) => mib(h.rxBytes)).join(' '), worst.hosts.map((h) => h.daemonCpuS.toFixed(1)).join(' ')];
    }),
  ));
  for (const f of [...r.lazy.flatMap((l) => l.vms), ...r.qcow2.flatMap((q) => q.vms)].filter((v) => v.failure).slice(0, 4)) out.push(`failed: ${f.host}/${f.vm}: ${f.failure!.split('\n')[0]}`);
  for (const e of r.errors) out.push(`phase failed: ${e.phase}: ${e.message.split('\n')[0]}`);
  out.push(`wall time ${r.wallSeconds.toFixed(0)} s, run ${r.run}`);
  return out.join('\n');
}
