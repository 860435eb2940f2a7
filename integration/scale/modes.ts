// How the nodes reach the image in each mode, and which services stand between them and
// the registry. A mode starts its services, names the ref and serve arguments the nodes
// use, and says whose egress is "the cache's" (mirror or supernodes).
import { join } from 'node:path';
import { startRegistryHost, storedBlobBytes } from './registry-host.js';
import { metricSum } from '../support/prometheus-text.js';
import { VERIFY_FAILURES } from './fleet.js';
import { nodeSupernodeArgs, preheat, scrapeSupernode, startSupernode, writeCredentials, type RunningSupernode } from './supernode.js';
import type { Datacenter, Host } from './topology.js';
import { startDhtHost } from './dht-host.js';

export const MODES = ['registry', 'mirror', 'supernode', 'supernode+preheat', 'registry+p2p', 'supernode+p2p'] as const;
export type ModeName = (typeof MODES)[number];

export interface ModeContext {
  dc: Datacenter;
  control: Host;
  /** The origin registry's `address:port`. */
  registry: string;
  /** `repository:tag` of the image. */
  imagePath: string;
  /** The mode's own directory (service storage, caches, tokens). */
  dir: string;
  /** Hosts set aside for the mode's services (the mirror host, the supernode hosts). */
  mirrorHost?: Host;
  supernodeHosts: Host[];
  /** Where the P2P modes run their DHT. */
  dhtHost?: Host;
  timeoutMs: number;
}

export interface ModeServices {
  /** The ref the nodes serve: the registry's, or the mirror's as if it were the registry. */
  nodeRef: string;
  nodeArgs: string[];
  /** Nodes exchange chunks over hyperswarm (each binds its P2P node to its own address). */
  p2p: boolean;
  /** Hosts whose egress is reported as the mirror's or supernodes'. */
  cacheHosts: Host[];
  /** Time spent before the nodes start (preheat), ms. */
  preparationMs: number;
  /** After the fleet: the services' own figures. */
  figures(): Promise<ServiceFigures>;
  stop(): Promise<void>;
}

export interface ServiceFigures {
  verifyFailures: number;
  /** Services whose metrics did not answer. */
  unscraped: number;
  /** Bytes the mirror fetched and kept (whole blobs). */
  mirrorStoredBytes?: number;
}

export async function startMode(mode: ModeName, ctx: ModeContext): Promise<ModeServices> {
  if (!mode.endsWith('+p2p')) return startServices(mode as Exclude<ModeName, `${string}+p2p`>, ctx);
  if (!ctx.dhtHost) throw new Error(`${mode} mode needs the DHT host`);
  const dht = await startDhtHost(ctx.dc, ctx.dhtHost, ctx.timeoutMs);
  try {
    const services = await startServices(mode === 'registry+p2p' ? 'registry' : 'supernode', ctx);
    return {
      ...services,
      nodeArgs: [...services.nodeArgs, '--p2p-bootstrap', dht.bootstrap],
      p2p: true,
      stop: async () => {
        await services.stop();
        await dht.process.stop();
      },
    };
  } catch (e) {
    await dht.process.stop();
    throw e;
  }
}

async function startServices(mode: Exclude<ModeName, `${string}+p2p`>, ctx: ModeContext): Promise<ModeServices> {
  const registryRef = `${ctx.registry}/${ctx.imagePath}`;
  switch (mode) {
    case 'registry':
      return { nodeRef: registryRef, nodeArgs: [], p2p: false, cacheHosts: [], preparationMs: 0, figures: async () => ({ verifyFailures: 0, unscraped: 0 }), stop: async () => undefined };
    case 'mirror': {
      if (!ctx.mirrorHost) throw new Error('mirror mode needs the mirror host');
      const mirror = await startRegistryHost(ctx.dc, ctx.mirrorHost, ctx.control, join(ctx.dir, 'mirror'), { upstream: ctx.registry, timeoutMs: ctx.timeoutMs });
      return {
        nodeRef: `${mirror.endpoint}/${ctx.imagePath}`,
        nodeArgs: [],
        p2p: false,
        cacheHosts: [ctx.mirrorHost],
        preparationMs: 0,
        // docker-registry verifies nothing; what it stored is what it fetched.
        figures: async () => ({ verifyFailures: 0, unscraped: 0, mirrorStoredBytes: await storedBlobBytes(mirror.storageDir) }),
        stop: () => mirror.process.stop(),
      };
    }
    case 'supernode':
    case 'supernode+preheat': {
      if (ctx.supernodeHosts.length === 0) throw new Error(`${mode} mode needs supernode hosts`);
      const credentials = await writeCredentials(ctx.dir);
      const running: RunningSupernode[] = [];
      const stop = async () => void (await Promise.all(running.map((s) => s.process.stop())));
      try {
        for (const host of ctx.supernodeHosts) running.push(await startSupernode(ctx.dc, host, ctx.registry, credentials, join(ctx.dir, host.role), ctx.timeoutMs));
        let preparationMs = 0;
        if (mode === 'supernode+preheat') {
          const t0 = performance.now();
          await preheat(ctx.dc, ctx.control, registryRef, running, credentials, ctx.dir, ctx.timeoutMs);
          preparationMs = performance.now() - t0;
        }
        return {
          nodeRef: registryRef,
          nodeArgs: nodeSupernodeArgs(running, credentials),
          p2p: false,
          cacheHosts: ctx.supernodeHosts,
          preparationMs,
          figures: async () => {
            let verifyFailures = 0;
            let unscraped = 0;
            for (const s of running) {
              const text = await scrapeSupernode(ctx.control, s, credentials);
              if (text === undefined) unscraped++;
              else verifyFailures += metricSum(text, VERIFY_FAILURES);
            }
            return { verifyFailures, unscraped };
          },
          stop,
        };
      } catch (e) {
        await stop();
        throw e;
      }
    }
  }
}
