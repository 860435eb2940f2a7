// N nodes started at once, each `lazybd serve` of the image in its own namespace with its
// own store and cache, each replaying the start-up reads through NBD as soon as it serves.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Owned } from '../support/processes.js';
import { rssBytes } from '../support/proc-stat.js';
import { NODE_METRICS_PORT } from './address-plan.js';
import { firstJsonLine, spawnLazybd } from './lazybd-process.js';
import { httpGet } from './ns-http.js';
import { metricByLabel, metricSum } from '../support/prometheus-text.js';
import type { SourceImage } from './test-image.js';
import type { Datacenter, Host } from './topology.js';
import { replayReads, type ReplayOutcome } from './trace-replay.js';

export const VERIFY_FAILURES = 'lazybd_chunk_verify_failures_total';
const SOURCE_BYTES = 'lazybd_source_bytes_total';
const EXPORT = 'disk';

export interface NodeOutcome extends ReplayOutcome {
  role: string;
  /** From spawn until the daemon said it serves. */
  servingMs: number;
  /** From spawn until the last start-up read returned: time-to-ready. */
  readyMs: number;
  /** Resident memory when the replay ended. */
  rssBytes: number;
  /** Whether the node's --metrics answered after the replay (else the two figures below are unknown). */
  metricsScraped: boolean;
  verifyFailures: number;
  sourceBytes: Record<string, number>;
}

export interface FleetOptions {
  /** The registry ref the nodes serve (the registry's or the mirror's). */
  ref: string;
  /** More `serve` arguments (supernode URLs and token, P2P bootstrap). */
  args: string[];
  /** Each node binds its P2P node to its own address. */
  p2p: boolean;
  /** Node i starts i × this many ms after the first; time-to-ready counts from its own start. */
  staggerMs: number;
  source: SourceImage;
  /** Bound on one node's start plus replay. */
  timeoutMs: number;
}

interface Member {
  host: Host;
  dir: string;
  process?: Owned;
  outcome?: NodeOutcome;
}

export class Fleet {
  private constructor(
    private readonly dc: Datacenter,
    private readonly members: Member[],
  ) {}

  /** Creates every node's directories, then spawns all nodes in one go and replays on each as it comes up. */
  static async run(dc: Datacenter, nodes: Host[], dir: string, o: FleetOptions): Promise<Fleet> {
    const members = nodes.map((host) => ({ host, dir: join(dir, host.role) }) as Member);
    await Promise.all(members.map((m) => mkdir(m.dir, { recursive: true })));
    const fleet = new Fleet(dc, members);
    await Promise.all(members.map(async (m, i) => {
      if (o.staggerMs > 0) await new Promise((r) => setTimeout(r, i * o.staggerMs));
      await fleet.start(m, o);
    }));
    return fleet;
  }

  private async start(m: Member, o: FleetOptions): Promise<void> {
    const socket = join(m.dir, 'nbd.sock');
    const t0 = performance.now();
    const args = ['serve', o.ref, '--plain-http', '--json', '--prefetch-rate', '0', '--socket', socket, '--export', EXPORT,
      '--cache-dir', join(m.dir, 'cache'), '--metrics', `${m.host.address}:${NODE_METRICS_PORT}`, ...(o.p2p ? ['--p2p-host', m.host.address] : []), ...o.args];
    m.process = spawnLazybd(this.dc, m.host, args, { LAZYBD_STORE: join(m.dir, 'store'), XDG_RUNTIME_DIR: m.dir });
    const base = { role: m.host.role, servingMs: NaN, readyMs: NaN, rssBytes: 0, metricsScraped: false, verifyFailures: 0, sourceBytes: {} };
    const deadline = setTimeout(() => void m.process?.stop(1000), o.timeoutMs);
    try {
      await firstJsonLine(m.process, `node ${m.host.role}`, o.timeoutMs);
      const servingMs = performance.now() - t0;
      const r = await replayReads(socket, EXPORT, o.source.reads, o.source.readSha256);
      m.outcome = { ...base, ...r, servingMs, readyMs: performance.now() - t0, rssBytes: await rssBytes(m.process.child.pid!) };
    } catch (e) {
      const reads = o.source.reads.length;
      m.outcome = { ...base, reads: 0, readErrors: reads, mismatches: 0, bytes: 0, sha256: '', failure: `${(e as Error).message.split('\n')[0]}` };
    } finally {
      clearTimeout(deadline);
    }
    if (m.outcome.failure) m.outcome.failure += `\n${m.process.output().slice(-2000)}`;
  }

  /** Reads every node's metrics (from `from`, over the network): verification failures and bytes per source. */
  async scrape(from: Host): Promise<void> {
    const parallel = 8;
    for (let i = 0; i < this.members.length; i += parallel) {
      await Promise.all(
        this.members.slice(i, i + parallel).map(async (m) => {
          const r = await httpGet(from, `http://${m.host.address}:${NODE_METRICS_PORT}/metrics`);
          if (r.status !== 200 || !m.outcome) return;
          m.outcome.metricsScraped = true;
          m.outcome.verifyFailures = metricSum(r.body, VERIFY_FAILURES);
          m.outcome.sourceBytes = metricByLabel(r.body, SOURCE_BYTES, 'source');
        }),
      );
    }
  }

  get outcomes(): NodeOutcome[] {
    return this.members.map((m) => m.outcome!);
  }

  /** SIGTERM to every node at once; resolves when all have exited. */
  async stop(): Promise<void> {
    await Promise.all(this.members.map((m) => m.process?.stop(5000)));
  }
}
