// The registries the cold-start bench reads from: today's loopback one (behind the counting
// FaultProxy), or one behind a shaped link as a datacenter node sees it — docker-registry in
// a network namespace, a veth pair to the root namespace (a /30 of 198.19.0.0/16), tbf at
// the link's rate on both ends and a userspace delay line (delay-line.c) for the RTT, since
// this kernel has no sch_netem. The bench's clients stay in the root namespace.
import { execFile } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { FaultProxy } from '../../support/fault-proxy.js';
import { spawnOwned, waitFor, type Owned } from '../../support/processes.js';
import { registryConfig, registryEnv, startRegistry, type RegistryServer } from '../../support/registry-server.js';
import { freePointToPointLink } from '../../scale/address-plan.js';
import { addNamespace, addPointToPointVeth, inNamespace, linkCounters, listAddresses } from '../../scale/netns.js';
import { interfaceName, namespaceName } from '../../scale/run-name.js';
import { shapeLink, unshapeLink } from '../../scale/shaping.js';

const run = promisify(execFile);

export interface BenchRegistry {
  /** `host:port`, the registry part of image references and blob URLs. */
  readonly host: string;
  /** What `sentBytes` counts, for the report. */
  readonly counts: string;
  /** Bytes the registry has sent so far (compare two readings). */
  sentBytes(): Promise<number>;
  stop(): Promise<void>;
}

/** Today's set-up: docker-registry on 127.0.0.1, the clients reaching it through a FaultProxy that counts blob bodies. */
export async function loopbackRegistry(): Promise<BenchRegistry> {
  const registry: RegistryServer = await startRegistry();
  const proxy = await FaultProxy.start(registry.host).catch(async (e: Error) => {
    await registry.stop();
    throw e;
  });
  return {
    host: proxy.host,
    counts: 'blob response bodies (FaultProxy)',
    sentBytes: async () => proxy.blobBytes,
    async stop() {
      await proxy.stop();
      await registry.stop();
    },
  };
}

const DELAY_LINE_SOURCE = fileURLToPath(new URL('../../../../integration/bench/coldstart/delay-line.c', import.meta.url));
const REGISTRY_PORT = 5000;
const INNER_PORT = 5001;

/**
 * docker-registry in namespace `<run>-r`, listening on the namespace's loopback; the delay
 * line listens on the veth address and forwards to it, holding each read `rttUs / 2` in each
 * direction. Unshaped until `shape`. Everything it creates carries the run's name, so
 * `removeRun(run)` (and the harnesses' start-up sweep) removes it.
 */
export class ShapedRegistry implements BenchRegistry {
  readonly counts = 'bytes sent on the registry link (ip -s link: all HTTP, incl. TCP/IP headers)';
  private rateMbit: number | null = null;

  private constructor(
    readonly host: string,
    readonly ns: string,
    readonly hostSide: string,
    readonly rttUs: number,
    private readonly processes: Owned[],
  ) {}

  static async start(runName: string, dir: string, rttUs: number): Promise<ShapedRegistry> {
    await mkdir(dir, { recursive: true });
    const delayLine = join(dir, 'delay-line');
    await run('gcc', ['-O2', '-Wall', '-o', delayLine, DELAY_LINE_SOURCE], { timeout: 60_000 });
    const ns = namespaceName(runName, 'r');
    const hostSide = interfaceName(runName, 'r');
    await addNamespace(ns);
    const link = freePointToPointLink(await listAddresses());
    await addPointToPointVeth(hostSide, `${link.root}/${link.prefixLength}`, ns, `${link.ns}/${link.prefixLength}`);
    const configFile = join(dir, 'registry.yml');
    await writeFile(configFile, registryConfig({ addr: `127.0.0.1:${INNER_PORT}`, storageDir: join(dir, 'registry-storage') }));
    const processes: Owned[] = [];
    const spawnIn = (cmd: string, args: string[], env?: NodeJS.ProcessEnv) => {
      const [c, a] = inNamespace(ns, cmd, args);
      const p = spawnOwned(c, a, env ? { env } : {});
      processes.push(p);
      return p;
    };
    const registry = spawnIn('docker-registry', ['serve', configFile], registryEnv());
    const line = spawnIn(delayLine, [`${link.ns}:${REGISTRY_PORT}`, `127.0.0.1:${INNER_PORT}`, String(Math.round(rttUs / 2))]);
    const host = `${link.ns}:${REGISTRY_PORT}`;
    const r = new ShapedRegistry(host, ns, hostSide, rttUs, processes);
    try {
      await waitFor(
        async () => {
          for (const p of [registry, line]) if (p.child.exitCode !== null) throw new Error(`exited early:\n${p.output()}`);
          const res = await fetch(`http://${host}/v2/`).catch(() => undefined);
          await res?.arrayBuffer();
          return res?.status === 200;
        },
        20_000,
        `docker-registry behind the delay line at ${host}`,
      );
    } catch (e) {
      await r.stop();
      throw e;
    }
    return r;
  }

  /** Rate of the link in each direction (tbf on both veth ends), or null for none. */
  async shape(rateMbit: number | null): Promise<void> {
    await unshapeLink(this.ns, this.hostSide);
    if (rateMbit !== null) await shapeLink(this.ns, this.hostSide, { rateMbit, delayUs: 0 });
    this.rateMbit = rateMbit;
  }

  get description(): string {
    return `${this.rateMbit === null ? 'unshaped' : `${this.rateMbit} Mbit/s (tbf, both directions)`}, RTT +${this.rttUs} µs (delay line), registry at ${this.host} in namespace ${this.ns}`;
  }

  async sentBytes(): Promise<number> {
    return (await linkCounters(this.ns)).txBytes;
  }

  /** Stops the registry and the delay line; the namespace and veth go with `removeRun`. */
  async stop(): Promise<void> {
    await Promise.all(this.processes.map((p) => p.stop()));
  }
}
