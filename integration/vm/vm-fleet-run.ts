// One run of the VM fleet: the datacenter harness's topology (registry, control, supernodes,
// DHT, M hosts), the boot image published to the registry, a single-VM reference, then per K
// all M×K VMs booting at once, from local qcow2 overlays and from lazybd disks in each mode.
import { execFile } from 'node:child_process';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { ChunkTable } from '../../lib/format/chunk-table.js';
import { CONTROL_ADDRESS, DHT_ADDRESS, REGISTRY_ADDRESS, nodeAddress, supernodeAddress } from '../scale/address-plan.js';
import type { Log } from '../scale/harness-main.js';
import { traceBytes, type InspectReport } from '../scale/image-publish.js';
import { chunkTables } from '../support/chunk-tables.js';
import { runLazybd } from '../scale/lazybd-process.js';
import { startMode, type ModeName } from '../scale/modes.js';
import { startRegistryHost } from '../scale/registry-host.js';
import { runDirectory } from '../scale/sweep.js';
import { Datacenter, type Host } from '../scale/topology.js';
import { bootImage, type BootImage } from './boot-image.js';
import { CloneDisks, ServeUpperDisks, type DiskService, type DiskServiceOptions } from './disk-service.js';
import { datacenterHost } from './lazybd-host.js';
import { bootVm, type Drive } from './qemu-vm.js';
import { bootStats, type LazyPhase, type QcowPhase, type ReferenceRound, type VmFleetReport, type VmOutcome } from './vm-fleet-report.js';

const run = promisify(execFile);

/** The datacenter modes a VM fleet can use (the mirror, which fetches whole blobs, is left to integration/scale). */
export const VM_MODES = ['registry', 'supernode', 'supernode+preheat', 'registry+p2p', 'supernode+p2p'] as const satisfies readonly ModeName[];
export type VmMode = (typeof VM_MODES)[number];
/** `clones` (one daemon a host, the default) first; `serve-upper` is how VM disks were made before clones. */
export const DISK_KINDS = ['clones', 'serve-upper'] as const;
export type DiskKind = (typeof DISK_KINDS)[number];

export interface VmFleetOptions {
  /** M simulated hosts. */
  hosts: number;
  /** K VMs a host, one fleet start per K. */
  vmsPerHost: number[];
  modes: VmMode[];
  disks: DiskKind;
  /** Times the reference and every fleet start are run (their order alternating); tables keep the best. */
  rounds: number;
  /** Run the single-VM reference (local raw against lazy serve, with the working set). */
  reference: boolean;
  memoryMiB: number;
  accel: 'tcg' | 'kvm';
  /**
   * MB/s of background prefetch on the fleet's lazybd daemons (0: none). Above 0 the first
   * reference boot's trace is attached to the image and pushed, so the daemons fetch the boot's
   * chunks first, then the rest of the image.
   */
  prefetchRate: number;
  supernodes: number;
  registryMbit: number;
  linkMbit: number;
  rttUs: number;
  /** Bound on one VM's boot (to the marker and power-off). */
  bootTimeoutMs: number;
  /** Bound on each service start and CLI call. */
  stepTimeoutMs: number;
}

const IMAGE_PATH = 'vm/boot:v1';

interface Topology {
  dc: Datacenter;
  image: BootImage;
  registryHost: Host;
  control: Host;
  registry: string;
  supernodeHosts: Host[];
  dhtHost?: Host;
  nodes: Host[];
  /** Each host's local copy of the raw disk: the base of its qcow2 overlays. */
  bases: Map<Host, string>;
  inspect: InspectReport;
  /** The image's chunk tables: the working set of a trace in stored bytes. */
  tables: ChunkTable[];
  dir: string;
}

export async function runVmFleet(runName: string, o: VmFleetOptions, log: Log, onDatacenter: (dc: Datacenter) => void): Promise<VmFleetReport> {
  const t0 = performance.now();
  const loadAtStart = loadavg()[0]!;
  log('boot image: from the cache, or built now (debootstrap, a few minutes)');
  const image = await bootImage();
  const dir = runDirectory(runName);
  await mkdir(dir, { recursive: true });
  const dc = await Datacenter.create(runName);
  onDatacenter(dc);
  const link = { rateMbit: o.linkMbit, delayUs: o.rttUs / 2 };
  const wantsSupernodes = o.modes.some((m) => m.startsWith('supernode'));
  const wantsP2p = o.modes.some((m) => m.endsWith('+p2p'));
  log(`building the datacenter: registry, control, ${wantsSupernodes ? `${o.supernodes} supernode(s), ` : ''}${o.hosts} host(s)`);
  const [registryHost, control, dhtHost] = await dc.addHosts([
    { role: 'r', address: REGISTRY_ADDRESS, shape: { rateMbit: o.registryMbit, delayUs: o.rttUs / 2 } },
    { role: 'c', address: CONTROL_ADDRESS, shape: link },
    ...(wantsP2p ? [{ role: 'd', address: DHT_ADDRESS, shape: link }] : []),
  ]);
  const supernodeHosts = wantsSupernodes ? await dc.addHosts(Array.from({ length: o.supernodes }, (_, i) => ({ role: `s${i}`, address: supernodeAddress(i), shape: link }))) : [];
  const nodes = await dc.addHosts(Array.from({ length: o.hosts }, (_, i) => ({ role: `n${i}`, address: nodeAddress(i), shape: link })));
  const registry = await startRegistryHost(dc, registryHost!, control!, join(dir, 'registry'), { timeoutMs: o.stepTimeoutMs });

  log(`publishing the boot image (${image.build.kernelVersion}) to ${registry.endpoint}`);
  const origin = { LAZYBD_STORE: join(dir, 'origin') };
  await runLazybd(dc, control!, ['create', image.disk, IMAGE_PATH, '--json'], origin, o.stepTimeoutMs);
  await runLazybd(dc, control!, ['push', IMAGE_PATH, `${registry.endpoint}/${IMAGE_PATH}`, '--plain-http', '--json'], origin, o.stepTimeoutMs);
  const inspect = JSON.parse(await runLazybd(dc, control!, ['inspect', IMAGE_PATH, '--json'], origin, o.stepTimeoutMs)) as InspectReport & { virtualSize: number };
  const bases = new Map<Host, string>();
  for (const h of nodes) {
    await mkdir(join(dir, h.role), { recursive: true });
    bases.set(h, join(dir, h.role, 'base.raw'));
    await run('cp', ['--sparse=always', image.disk, bases.get(h)!]);
  }
  const t: Topology = { dc, image, registryHost: registryHost!, control: control!, registry: registry.endpoint, supernodeHosts, dhtHost: wantsP2p ? dhtHost : undefined, nodes, bases, inspect, tables: await chunkTables(origin.LAZYBD_STORE, IMAGE_PATH), dir };

  const reference: ReferenceRound[] = [];
  const qcow2: QcowPhase[] = [];
  const lazy: LazyPhase[] = [];
  const errors: { phase: string; message: string }[] = [];
  // A phase that fails (a daemon that did not start on a machine under load, say) is reported and
  // the run goes on: an hour of rounds is not lost to one of them.
  const attempt = async (phase: string, fn: () => Promise<void>) => {
    try {
      await fn();
    } catch (e) {
      errors.push({ phase, message: (e as Error).message });
      log(`${phase} failed: ${(e as Error).message.split('\n')[0]}`);
    }
  };
  for (let round = 0; round < o.rounds; round++) {
    if (o.reference) {
      await attempt(`round ${round + 1}, one VM`, async () => {
        const { figures: r, traceText } = await referenceRound(t, o, round);
        reference.push(r);
        if (o.prefetchRate > 0 && round === 0) {
          await publishTrace(t, origin, traceText, o.stepTimeoutMs);
          log(`the boot's trace (${r.traceChunks} chunks) is attached to the image: the fleet's daemons prefetch it first at ${o.prefetchRate} MB/s`);
        }
        log(`round ${round + 1}, one VM: local raw ${(r.localRawMs / 1000).toFixed(1)} s, lazybd serve ${(r.lazyMs / 1000).toFixed(1)} s, registry egress ${(r.registryEgressBytes / 2 ** 20).toFixed(1)} MiB, working set ${(r.workingSetBytes / 2 ** 20).toFixed(1)} MiB`);
      });
    }
    for (const k of o.vmsPerHost) {
      // Alternate which goes first, so neither always meets the other's leftovers (page cache, load).
      const steps = [
        () => attempt(`round ${round + 1}, K=${k} qcow2`, async () => {
          qcow2.push({ ...(await qcowPhase(t, o, k)), round });
          log(`round ${round + 1}, K=${k}: ${o.hosts * k} VMs from local qcow2 overlays, p99 ${(qcow2.at(-1)!.stats.p99Ms / 1000).toFixed(1)} s`);
        }),
        async () => {
          for (const mode of o.modes) {
            await attempt(`round ${round + 1}, K=${k} ${mode}`, async () => {
              lazy.push({ ...(await lazyPhase(t, o, k, mode)), round });
              const l = lazy.at(-1)!;
              log(`round ${round + 1}, K=${k} ${mode}: ${l.stats.booted}/${l.stats.vms} booted from lazybd, p99 ${(l.stats.p99Ms / 1000).toFixed(1)} s, registry egress ${(l.registryEgressBytes / 2 ** 20).toFixed(1)} MiB`);
            });
          }
        },
      ];
      for (const step of round % 2 === 0 ? steps : steps.reverse()) await step();
    }
  }
  const qemu = (await run('qemu-system-x86_64', ['--version'])).stdout.split('\n')[0]!.trim();
  const dataBytes = inspect.layers.reduce((n, l) => n + l.dataBytes, 0);
  return {
    run: runName,
    machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model ?? '?', memoryGiB: Math.round(totalmem() / 2 ** 30), kernel: release(), node: process.version, qemu, loadAverage: [loadAtStart, loadavg()[0]!] },
    topology: { hosts: o.hosts, supernodes: supernodeHosts.length, registryMbit: o.registryMbit, linkMbit: o.linkMbit, rttUs: o.rttUs, delayApplied: dc.delayApplied, memoryMiB: o.memoryMiB, accel: o.accel, prefetchRate: o.prefetchRate },
    image: { kernelVersion: image.build.kernelVersion, virtualBytes: inspect.virtualSize, dataBytes, layerBytes: inspect.layers.reduce((n, l) => n + l.size, 0), chunkSize: inspect.chunkSize, buildSeconds: image.build.buildSeconds, builtNow: image.builtNow },
    reference,
    qcow2,
    lazy,
    errors,
    wallSeconds: (performance.now() - t0) / 1000,
  };
}

/** `lazybd trace attach` of a recorded boot to the image, and push again: what a user does once to have every later boot prefetched. */
async function publishTrace(t: Topology, origin: NodeJS.ProcessEnv, traceText: string, timeoutMs: number): Promise<void> {
  const file = join(t.dir, 'boot-trace.json');
  await writeFile(file, traceText);
  await runLazybd(t.dc, t.control, ['trace', 'attach', IMAGE_PATH, file, '--json'], origin, timeoutMs);
  await runLazybd(t.dc, t.control, ['push', IMAGE_PATH, `${t.registry}/${IMAGE_PATH}`, '--plain-http', '--json'], origin, timeoutMs);
}

interface VmSpec {
  host: Host;
  vm: string;
  drive: Drive;
}

/** Boots every VM at once, each in its host's namespace; a VM that fails is an outcome with `failure`, not an exception. */
async function bootAll(t: Topology, o: VmFleetOptions, specs: VmSpec[]): Promise<VmOutcome[]> {
  return Promise.all(specs.map(async (s): Promise<VmOutcome> => {
    const base = { host: s.host.role, vm: s.vm };
    try {
      const b = await bootVm({ image: t.image, drive: s.drive, memoryMiB: o.memoryMiB, accel: o.accel, timeoutMs: o.bootTimeoutMs, spawn: (cmd, args) => t.dc.spawn(s.host, cmd, args) });
      // Every disk of a phase is fresh: a guest that counts an earlier boot booted someone else's disk.
      if (b.marker.boots !== 1) return { ...base, bootMs: NaN, guestUptimeS: b.marker.uptimeS, failure: `the disk was not fresh: boot ${b.marker.boots}` };
      return { ...base, bootMs: b.bootMs, guestUptimeS: b.marker.uptimeS };
    } catch (e) {
      return { ...base, bootMs: NaN, guestUptimeS: NaN, failure: (e as Error).message };
    }
  }));
}

/** One VM on the first host: from a local raw copy, and from `lazybd serve --upper` of the registry ref on a cold cache (its trace gives the working set). */
async function referenceRound(t: Topology, o: VmFleetOptions, round: number): Promise<{ figures: ReferenceRound; traceText: string }> {
  const host = t.nodes[0]!;
  const dir = join(t.dir, `reference-${round}`);
  await mkdir(dir);
  try {
    const raw = join(dir, 'disk.raw');
    await run('cp', ['--sparse=always', t.bases.get(host)!, raw]);
    const localRaw = async () => (await bootAll(t, o, [{ host, vm: 'raw', drive: { kind: 'drive', file: raw, format: 'raw' } }]))[0]!;
    const lazyBoot = async () => {
      const disks = new ServeUpperDisks({ host: datacenterHost(t.dc, host), ref: `${t.registry}/${IMAGE_PATH}`, dir: join(dir, 'lazy'), serveArgs: ['--plain-http'], timeoutMs: o.stepTimeoutMs, recordTrace: true });
      try {
        const before = await t.dc.counters(t.registryHost);
        const disk = await disks.add('ref');
        const vm = (await bootAll(t, o, [{ host, vm: 'lazy', drive: { kind: 'drive', file: disk.uri, format: 'raw' } }]))[0]!;
        const after = await t.dc.counters(t.registryHost);
        const sourceBytes = await disks.sourceBytes();
        const daemonCpuS = await disks.cpuSeconds();
        await disks.stop();
        const traceText = await readFile(disk.traceFile!, 'utf8');
        const trace = JSON.parse(traceText) as { entries: [number, number][] };
        return { vm, registryEgressBytes: after.txBytes - before.txBytes, sourceBytes, workingSetBytes: traceBytes(t.tables, trace.entries), traceChunks: trace.entries.length, daemonCpuS, traceText };
      } finally {
        await disks.stop();
      }
    };
    // Alternate which goes first, so neither always meets the other's page cache.
    let vmRaw: VmOutcome;
    let l: Awaited<ReturnType<typeof lazyBoot>>;
    if (round % 2 === 0) {
      vmRaw = await localRaw();
      l = await lazyBoot();
    } else {
      l = await lazyBoot();
      vmRaw = await localRaw();
    }
    for (const v of [vmRaw, l.vm]) if (v.failure) throw new Error(`reference ${v.vm} boot failed: ${v.failure}`);
    const figures = { localRawMs: vmRaw.bootMs, lazyMs: l.vm.bootMs, registryEgressBytes: l.registryEgressBytes, sourceBytes: l.sourceBytes, workingSetBytes: l.workingSetBytes, traceChunks: l.traceChunks, daemonCpuS: l.daemonCpuS };
    return { figures, traceText: l.traceText };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** K VMs a host from K qcow2 overlays on the host's local raw base: what a user does today. */
async function qcowPhase(t: Topology, o: VmFleetOptions, k: number): Promise<Omit<QcowPhase, 'round'>> {
  const specs: VmSpec[] = [];
  const made: string[] = [];
  try {
    for (const host of t.nodes) {
      for (let i = 0; i < k; i++) {
        const overlay = join(t.dir, host.role, `overlay-${i}.qcow2`);
        await run('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', t.bases.get(host)!, '-F', 'raw', overlay]);
        made.push(overlay);
        specs.push({ host, vm: `qcow2-${i}`, drive: { kind: 'drive', file: overlay, format: 'qcow2' } });
      }
    }
    const vms = await bootAll(t, o, specs);
    return { vmsPerHost: k, stats: bootStats(vms), vms };
  } finally {
    await Promise.all(made.map((f) => rm(f, { force: true })));
  }
}

function diskService(kind: DiskKind, options: DiskServiceOptions): DiskService {
  switch (kind) {
    case 'clones':
      return new CloneDisks(options);
    case 'serve-upper':
      return new ServeUpperDisks(options);
  }
}

/** K lazybd disks a host over the registry image, reached as `mode` says, and all M×K VMs booting from them at once. */
async function lazyPhase(t: Topology, o: VmFleetOptions, k: number, mode: VmMode): Promise<Omit<LazyPhase, 'round'>> {
  const dir = join(t.dir, `k${k}-${mode.replace(/\W/g, '-')}`);
  await mkdir(dir);
  const egressHosts = [t.registryHost, ...t.supernodeHosts];
  // Counted from before the services start: a preheat's fetches are the registry's egress too.
  const before = await Promise.all([...egressHosts, ...t.nodes].map((h) => t.dc.counters(h)));
  const services = await startMode(mode, { dc: t.dc, control: t.control, registry: t.registry, imagePath: IMAGE_PATH, dir, supernodeHosts: t.supernodeHosts, dhtHost: t.dhtHost, timeoutMs: o.stepTimeoutMs });
  const perHost: { host: Host; disks: DiskService }[] = [];
  try {
    const t0 = performance.now();
    const specs = (await Promise.all(t.nodes.map(async (host) => {
      const disks = diskService(o.disks, {
        host: datacenterHost(t.dc, host),
        ref: services.nodeRef,
        dir: join(dir, host.role),
        serveArgs: ['--plain-http', ...services.nodeArgs, ...(services.p2p ? ['--p2p-host', host.address] : [])],
        timeoutMs: o.stepTimeoutMs,
        prefetchRate: o.prefetchRate,
      });
      perHost.push({ host, disks });
      const out: VmSpec[] = [];
      for (let i = 0; i < k; i++) {
        const disk = await disks.add(`vm${i}`);
        out.push({ host, vm: disk.name, drive: { kind: 'drive', file: disk.uri, format: 'raw' } });
      }
      return out;
    }))).flat();
    const prepareMs = performance.now() - t0;
    const vms = await bootAll(t, o, specs);
    const after = await Promise.all([...egressHosts, ...t.nodes].map((h) => t.dc.counters(h)));
    const tx = (i: number) => after[i]!.txBytes - before[i]!.txBytes;
    const hosts = await Promise.all(t.nodes.map(async (host, i) => {
      const { disks } = perHost.find((p) => p.host === host)!;
      return { host: host.role, rxBytes: after[egressHosts.length + i]!.rxBytes - before[egressHosts.length + i]!.rxBytes, sourceBytes: await disks.sourceBytes(), daemonCpuS: await disks.cpuSeconds() };
    }));
    return {
      mode,
      vmsPerHost: k,
      disks: o.disks,
      stats: bootStats(vms),
      vms,
      prepareMs,
      registryEgressBytes: tx(0),
      supernodeEgressBytes: t.supernodeHosts.length && mode.startsWith('supernode') ? t.supernodeHosts.reduce((n, _, i) => n + tx(1 + i), 0) : null,
      hosts,
      preparationMs: services.preparationMs,
    };
  } finally {
    await Promise.all(perHost.map((p) => p.disks.stop()));
    await services.stop();
    await rm(dir, { recursive: true, force: true });
  }
}
