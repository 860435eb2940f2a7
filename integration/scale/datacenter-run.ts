// One run of the datacenter: build the topology, publish the image, start the fleet once
// per mode and measure it, tear everything down.
import { mkdir, rm } from 'node:fs/promises';
import { cpus, loadavg, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { CONTROL_ADDRESS, DHT_ADDRESS, MIRROR_ADDRESS, REGISTRY_ADDRESS, nodeAddress, supernodeAddress } from './address-plan.js';
import { Fleet } from './fleet.js';
import type { Log } from './harness-main.js';
import { publishImage } from './image-publish.js';
import { startMode, type ModeName } from './modes.js';
import { startRegistryHost } from './registry-host.js';
import { summarizeNodes, type DatacenterReport, type ModeReport } from './report.js';
import { runDirectory } from './sweep.js';
import { writeSourceImage } from './test-image.js';
import { Datacenter, type Host } from './topology.js';

export interface DatacenterOptions {
  nodes: number;
  modes: ModeName[];
  imageMiB: number;
  dataFraction: number;
  traceFraction: number;
  chunkSize: number;
  seed: number;
  /** Fleet starts per mode on the same services (wave 2 on meets a warm mirror or supernode). */
  waves: number;
  supernodes: number;
  registryMbit: number;
  linkMbit: number;
  rttUs: number;
  /** The nodes' --io-timeout: a read no source serves in this time fails (EIO). */
  ioTimeoutS: number;
  /** Bound on one node's start and replay, and on each service start and CLI call. */
  stepTimeoutMs: number;
  /** Node i starts i × this many ms after the first (a rollout rather than one instant; what lets neighbours help). Default 0. */
  staggerMs?: number;
}

/** Runs every mode on one topology. The caller owns clean-up (`removeRun(run)`), so that a signal can do it too. */
export async function runDatacenter(run: string, o: DatacenterOptions, log: Log, onDatacenter: (dc: Datacenter) => void): Promise<DatacenterReport> {
  const t0 = performance.now();
  const loadAtStart = loadavg()[0]!;
  const dir = runDirectory(run);
  await mkdir(dir, { recursive: true });
  const dc = await Datacenter.create(run);
  onDatacenter(dc);
  const link = { rateMbit: o.linkMbit, delayUs: o.rttUs / 2 };
  const wantsSupernodes = o.modes.some((m) => m.startsWith('supernode'));
  log(`building the datacenter: registry, control, ${o.modes.includes('mirror') ? 'mirror, ' : ''}${wantsSupernodes ? `${o.supernodes} supernode(s), ` : ''}${o.nodes} nodes`);
  const wantsP2p = o.modes.some((m) => m.endsWith('+p2p'));
  const [registryHost, control, ...optional] = await dc.addHosts([
    { role: 'r', address: REGISTRY_ADDRESS, shape: { rateMbit: o.registryMbit, delayUs: o.rttUs / 2 } },
    { role: 'c', address: CONTROL_ADDRESS, shape: link },
    ...(o.modes.includes('mirror') ? [{ role: 'm', address: MIRROR_ADDRESS, shape: link }] : []),
    ...(wantsP2p ? [{ role: 'd', address: DHT_ADDRESS, shape: link }] : []),
  ]);
  const mirrorHost = o.modes.includes('mirror') ? optional.shift() : undefined;
  const dhtHost = wantsP2p ? optional.shift() : undefined;
  const supernodeHosts = wantsSupernodes ? await dc.addHosts(Array.from({ length: o.supernodes }, (_, i) => ({ role: `s${i}`, address: supernodeAddress(i), shape: link }))) : [];
  const nodes = await dc.addHosts(Array.from({ length: o.nodes }, (_, i) => ({ role: `n${i}`, address: nodeAddress(i), shape: link })));

  const registry = await startRegistryHost(dc, registryHost!, control!, join(dir, 'registry'), { timeoutMs: o.stepTimeoutMs });
  log(`writing a ${o.imageMiB} MiB image (${(o.dataFraction * 100).toFixed(0)}% data) and its start-up reads`);
  const imageDir = join(dir, 'image');
  await mkdir(imageDir);
  const source = await writeSourceImage(imageDir, { imageMiB: o.imageMiB, dataFraction: o.dataFraction, traceFraction: o.traceFraction, chunkSize: o.chunkSize, seed: o.seed });
  log(`publishing it to ${registry.endpoint} with a recorded trace`);
  const image = await publishImage(dc, control!, registry.endpoint, source, imageDir, o.chunkSize, o.stepTimeoutMs);
  await rm(source.rawPath);

  const serviceHosts = [...(mirrorHost ? [mirrorHost] : []), ...supernodeHosts];
  const modes: ModeReport[] = [];
  for (const mode of o.modes) {
    log(`mode ${mode}: starting ${o.nodes} nodes at once${o.waves > 1 ? `, ${o.waves} times` : ''}`);
    const modeDir = join(dir, `mode-${mode.replace(/\W/g, '-')}`);
    await mkdir(modeDir);
    // Counted from before the services start: a preheat's fetches are the registry's egress too.
    let before = await egress(dc, registryHost!, serviceHosts);
    const services = await startMode(mode, { dc, control: control!, registry: registry.endpoint, imagePath: image.path, dir: modeDir, mirrorHost, supernodeHosts, dhtHost, timeoutMs: o.stepTimeoutMs });
    let fleet: Fleet | undefined;
    let serviceFailuresBefore = 0;
    try {
      for (let wave = 1; wave <= o.waves; wave++) {
        const nodesDir = join(modeDir, `nodes-${wave}`);
        if (wave > 1) before = await egress(dc, registryHost!, serviceHosts);
        fleet = await Fleet.run(dc, nodes, nodesDir, { ref: services.nodeRef, args: [...services.nodeArgs, '--io-timeout', String(o.ioTimeoutS)], p2p: services.p2p, staggerMs: o.staggerMs ?? 0, source, timeoutMs: o.stepTimeoutMs });
        const after = await egress(dc, registryHost!, serviceHosts);
        await fleet.scrape(control!);
        const figures = await services.figures();
        await fleet.stop();
        await rm(nodesDir, { recursive: true, force: true });
        const registryEgressBytes = after.tx.get(registryHost!)! - before.tx.get(registryHost!)!;
        const { verifyFailures, unscrapedNodes, ...nodeFigures } = summarizeNodes(fleet.outcomes);
        const report: ModeReport = {
          mode,
          wave,
          nodes: o.nodes,
          registryEgressBytes,
          cacheEgressBytes: services.cacheHosts.length ? services.cacheHosts.reduce((n, h) => n + after.tx.get(h)! - before.tx.get(h)!, 0) : null,
          registryEgressPerWorkingSet: registryEgressBytes / image.workingSetBytes,
          ...nodeFigures,
          verifyFailures: { nodes: verifyFailures, services: figures.verifyFailures - serviceFailuresBefore, unscraped: unscrapedNodes + figures.unscraped },
          preparationMs: wave === 1 ? services.preparationMs : 0,
          ...(figures.mirrorStoredBytes !== undefined ? { mirrorStoredBytes: figures.mirrorStoredBytes } : {}),
          nodeOutcomes: fleet.outcomes,
        };
        serviceFailuresBefore = figures.verifyFailures;
        modes.push(report);
        log(`mode ${mode}${o.waves > 1 ? ` wave ${wave}` : ''}: ${report.nodesReady}/${o.nodes} ready, registry egress ${(registryEgressBytes / 2 ** 20).toFixed(1)} MiB, p50 ${(report.timeToReadyMs.p50 / 1000).toFixed(2)} s`);
        for (const f of fleet.outcomes.filter((n) => n.failure).slice(0, 3)) log(`  node ${f.role}: ${f.failure}`);
      }
    } finally {
      await fleet?.stop();
      await services.stop();
      await rm(modeDir, { recursive: true, force: true });
    }
  }

  return {
    run,
    machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model ?? '?', memoryGiB: Math.round(totalmem() / 2 ** 30), kernel: release(), node: process.version, loadAverage: [loadAtStart, loadavg()[0]!] },
    topology: { nodes: o.nodes, supernodes: supernodeHosts.length, registryMbit: o.registryMbit, linkMbit: o.linkMbit, rttUs: o.rttUs, delayApplied: dc.delayApplied, ioTimeoutS: o.ioTimeoutS },
    image: {
      virtualBytes: source.virtualBytes,
      dataBytes: source.dataBytes,
      layerBytes: image.layerBytes,
      imageBytes: image.imageBytes,
      chunkSize: image.chunkSize,
      reads: source.reads.length,
      readBytes: source.reads.reduce((n, [, l]) => n + l, 0),
      replaySha256: source.replaySha256,
      traceChunks: image.traceChunks,
      workingSetBytes: image.workingSetBytes,
    },
    modes,
    wallSeconds: (performance.now() - t0) / 1000,
  };
}

/** tx bytes of the registry's and the service hosts' links. */
async function egress(dc: Datacenter, registry: Host, serviceHosts: Host[]): Promise<{ tx: Map<Host, number> }> {
  const hosts = [registry, ...serviceHosts];
  const counters = await Promise.all(hosts.map((h) => dc.counters(h)));
  return { tx: new Map(hosts.map((h, i) => [h, counters[i]!.txBytes])) };
}
