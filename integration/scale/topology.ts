// The datacenter: one bridge, and per host a namespace joined to it by a shaped veth.
import type { SpawnOptions } from 'node:child_process';
import { spawnOwned, type Owned } from '../support/processes.js';
import { PREFIX_LENGTH } from './address-plan.js';
import { addBridge, addNamespace, addVeth, ensureNeighbourCapacity, inNamespace, linkCounters, type LinkCounters } from './netns.js';
import { interfaceName, namespaceName } from './run-name.js';
import { shapeLink, type LinkShape } from './shaping.js';
import { removeRun } from './sweep.js';

export interface Host {
  /** Short name, unique in the run: r, m, c, s0…, n0…. */
  role: string;
  ns: string;
  /** Host side of its veth, in the root namespace. */
  hostSide: string;
  address: string;
  shape: LinkShape;
}

export class Datacenter {
  readonly hosts = new Map<string, Host>();
  /** False once a link could not get its delay (no sch_netem in this kernel). */
  delayApplied = true;
  private readonly processes = new Set<Owned>();

  private constructor(
    readonly run: string,
    readonly bridge: string,
  ) {}

  static async create(run: string): Promise<Datacenter> {
    const dc = new Datacenter(run, interfaceName(run, 'br'));
    await addBridge(dc.bridge);
    return dc;
  }

  async addHost(role: string, address: string, shape: LinkShape): Promise<Host> {
    if (this.hosts.has(role)) throw new Error(`host ${role} exists`);
    const host: Host = { role, ns: namespaceName(this.run, role), hostSide: interfaceName(this.run, role), address, shape };
    this.hosts.set(role, host);
    await addNamespace(host.ns);
    await addVeth(host.hostSide, this.bridge, host.ns, `${address}/${PREFIX_LENGTH}`);
    const applied = await shapeLink(host.ns, host.hostSide, shape);
    if (!applied.delay) this.delayApplied = false;
    return host;
  }

  /** Adds hosts a few at a time: each is a dozen `ip`/`tc` calls. */
  async addHosts(specs: { role: string; address: string; shape: LinkShape }[], parallel = 4): Promise<Host[]> {
    // Every host may resolve every other (a P2P mesh), twice over for headroom.
    const hosts = this.hosts.size + specs.length;
    const raised = await ensureNeighbourCapacity(2 * hosts * hosts);
    if (raised !== undefined) process.stderr.write(`[datacenter] raised the kernel's ARP table limit (net.ipv4.neigh.default.gc_thresh3, shared by all namespaces) from ${raised} to ${2 * hosts * hosts} for ${hosts} hosts\n`);
    const out: Host[] = [];
    for (let i = 0; i < specs.length; i += parallel) {
      out.push(...(await Promise.all(specs.slice(i, i + parallel).map((s) => this.addHost(s.role, s.address, s.shape)))));
    }
    return out;
  }

  /** A process inside `host`'s namespace, owned by this run (stopped by `destroy`). */
  spawn(host: Host, cmd: string, args: string[], options: SpawnOptions = {}): Owned {
    const [c, a] = inNamespace(host.ns, cmd, args);
    const p = spawnOwned(c, a, options);
    this.processes.add(p);
    p.child.once('exit', () => this.processes.delete(p));
    return p;
  }

  counters(host: Host): Promise<LinkCounters> {
    return linkCounters(host.ns);
  }

  /** Stops every process (SIGTERM, then SIGKILL), then removes every namespace, link and directory of the run. */
  async destroy(graceMs = 3000): Promise<void> {
    await Promise.all([...this.processes].map((p) => p.stop(graceMs)));
    await removeRun(this.run);
  }
}
