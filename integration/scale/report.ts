// Figures of a run: per mode, what left the registry and the cache, how fast the fleet
// was ready, and whether every node read the right bytes. A table for people, JSON for tools.
import type { NodeOutcome } from './fleet.js';

export interface ModeReport {
  mode: string;
  /** 1 for the first fleet start on fresh services, 2… for later starts on the same (warm) services. */
  wave: number;
  nodes: number;
  /** tx bytes of the registry's link during the mode (to nodes, mirror, supernodes alike). */
  registryEgressBytes: number;
  /** tx bytes of the mirror's or supernodes' links; null in registry mode. */
  cacheEgressBytes: number | null;
  /** registryEgressBytes / working set. */
  registryEgressPerWorkingSet: number;
  /** Time-to-ready over the ready nodes (every start-up read answered with the right bytes), ms. */
  timeToReadyMs: { p50: number; p99: number; max: number };
  /** Nodes that read every start-up byte, right, without an error. */
  nodesReady: number;
  /** `unscraped`: nodes and supernodes whose metrics did not answer, so their failures are not counted. */
  verifyFailures: { nodes: number; services: number; unscraped: number };
  readErrors: number;
  mismatches: number;
  /** Preheat time before the nodes start, ms (0 for modes without). */
  preparationMs: number;
  /** Mirror mode: bytes of the blobs the mirror fetched and kept. */
  mirrorStoredBytes?: number;
  /** Bytes the nodes received, by the source their metrics name (registry: whatever the node's registry ref points at). */
  nodeSourceBytes: Record<string, number>;
  maxNodeRssBytes: number;
  nodeOutcomes: NodeOutcome[];
}

export interface DatacenterReport {
  run: string;
  machine: { cpus: number; cpuModel: string; memoryGiB: number; kernel: string; node: string; /** 1-minute load average at the start and the end: other work on the machine skews the times. */ loadAverage: [number, number] };
  topology: { nodes: number; supernodes: number; registryMbit: number; linkMbit: number; rttUs: number; delayApplied: boolean; ioTimeoutS: number };
  image: {
    virtualBytes: number;
    dataBytes: number;
    layerBytes: number;
    imageBytes: number;
    chunkSize: number;
    reads: number;
    readBytes: number;
    /** sha256 of the start-up reads' bytes in the source raw disk, in order. */
    replaySha256: string;
    traceChunks: number;
    workingSetBytes: number;
  };
  modes: ModeReport[];
  wallSeconds: number;
}

/** Nearest-rank percentile of `values` (NaN when empty). */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

export function summarizeNodes(outcomes: NodeOutcome[]): Pick<ModeReport, 'timeToReadyMs' | 'nodesReady' | 'readErrors' | 'mismatches' | 'maxNodeRssBytes' | 'nodeSourceBytes'> & { verifyFailures: number; unscrapedNodes: number } {
  const ready = outcomes.filter((o) => !o.failure && o.readErrors === 0 && o.mismatches === 0);
  const nodeSourceBytes: Record<string, number> = {};
  for (const o of outcomes) for (const [k, v] of Object.entries(o.sourceBytes)) nodeSourceBytes[k] = (nodeSourceBytes[k] ?? 0) + v;
  return {
    timeToReadyMs: { p50: percentile(ready.map((o) => o.readyMs), 50), p99: percentile(ready.map((o) => o.readyMs), 99), max: percentile(ready.map((o) => o.readyMs), 100) },
    nodesReady: ready.length,
    readErrors: outcomes.reduce((n, o) => n + o.readErrors, 0),
    mismatches: outcomes.reduce((n, o) => n + o.mismatches, 0),
    verifyFailures: outcomes.reduce((n, o) => n + o.verifyFailures, 0),
    unscrapedNodes: outcomes.filter((o) => !o.metricsScraped).length,
    maxNodeRssBytes: Math.max(0, ...outcomes.map((o) => o.rssBytes)),
    nodeSourceBytes,
  };
}

const mib = (b: number) => (b / 2 ** 20).toFixed(1);
const sec = (ms: number) => (Number.isNaN(ms) ? '-' : (ms / 1000).toFixed(2));

/** A Markdown table, its columns padded to their widest cell: one string a line. */
export function markdownTable(head: string[], rows: string[][]): string[] {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)];
}

export function formatTable(r: DatacenterReport): string {
  const head = ['mode',  'nodes ready', 'registry egress MiB', '× working set', 'mirror/supernode egress MiB', 'ready p50 s', 'p99 s', 'max s', 'verify failures', 'read errors', 'preheat s', 'peer MiB/node'];
  const waves = r.modes.some((m) => m.wave > 1);
  const rows = r.modes.map((m) => [
    waves ? `${m.mode} #${m.wave}` : m.mode,
    `${m.nodesReady}/${m.nodes}`,
    mib(m.registryEgressBytes),
    m.registryEgressPerWorkingSet.toFixed(2),
    m.cacheEgressBytes === null ? '-' : mib(m.cacheEgressBytes),
    sec(m.timeToReadyMs.p50),
    sec(m.timeToReadyMs.p99),
    sec(m.timeToReadyMs.max),
    `${m.verifyFailures.nodes + m.verifyFailures.services}${m.verifyFailures.unscraped ? ` (${m.verifyFailures.unscraped} unknown)` : ''}`,
    String(m.readErrors + m.mismatches),
    m.preparationMs ? sec(m.preparationMs) : '-',
    m.nodeSourceBytes.peer ? mib(m.nodeSourceBytes.peer / m.nodes) : '-',
  ]);
  const { image: im, topology: t, machine: mc } = r;
  return [
    `machine: ${mc.cpus} CPUs ${mc.cpuModel}, ${mc.memoryGiB} GiB, Linux ${mc.kernel}, node ${mc.node}; load average ${mc.loadAverage[0].toFixed(1)} at the start, ${mc.loadAverage[1].toFixed(1)} at the end`,
    `topology: ${t.nodes} nodes, ${t.supernodes} supernode(s); registry link ${t.registryMbit} Mbit/s, other links ${t.linkMbit} Mbit/s; RTT ${t.delayApplied ? `${t.rttUs} µs added` : 'not added (kernel lacks sch_netem)'}; node --io-timeout ${t.ioTimeoutS} s`,
    `image: ${mib(im.virtualBytes)} MiB virtual, ${mib(im.dataBytes)} MiB data, ${mib(im.imageBytes)} MiB to copy whole; start-up: ${im.reads} reads, ${mib(im.readBytes)} MiB, working set ${im.traceChunks} chunks = ${mib(im.workingSetBytes)} MiB`,
    '',
    ...markdownTable(head, rows),
    ...r.modes.filter((m) => m.mirrorStoredBytes !== undefined && m.wave === 1).map((m) => `${m.mode}: the mirror fetched and kept ${mib(m.mirrorStoredBytes!)} MiB of blobs (whole blobs)`),
    `wall time ${r.wallSeconds.toFixed(0)} s, run ${r.run}`,
  ].join('\n');
}
