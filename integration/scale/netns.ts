// Network namespace, bridge and veth primitives over iproute2 (`ip`); one call, one change.
import { readFile, writeFile } from 'node:fs/promises';
import { system } from './system-command.js';

function ip(args: string[]): Promise<string> {
  return system('ip', args);
}

export async function listNamespaces(): Promise<string[]> {
  const out = (await ip(['-j', 'netns', 'list'])).trim();
  return out ? (JSON.parse(out) as { name: string }[]).map((n) => n.name) : [];
}

/** Interfaces of the root namespace (bridges, host sides of veths). */
export async function listInterfaces(): Promise<string[]> {
  return (JSON.parse(await ip(['-j', 'link', 'show'])) as { ifname: string }[]).map((l) => l.ifname);
}

/** A namespace with loopback up and IPv6 off (no router solicitations or DAD in the byte counts). */
export async function addNamespace(ns: string): Promise<void> {
  await ip(['netns', 'add', ns]);
  await ip(['-n', ns, 'link', 'set', 'lo', 'up']);
  await system('ip', ['netns', 'exec', ns, 'sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
}

/** Pids of the processes inside `ns` (whatever started them). */
export async function namespacePids(ns: string): Promise<number[]> {
  const out = await ip(['netns', 'pids', ns]).catch(() => '');
  return out.split(/\s+/).filter(Boolean).map(Number);
}

/**
 * Kills what still runs in `ns`, then removes it. A namespace stays alive while a process
 * is in it, so the kill comes first; `ip netns del` only drops the name.
 */
export async function deleteNamespace(ns: string): Promise<void> {
  for (const pid of await namespacePids(ns)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone already
    }
  }
  await ip(['netns', 'del', ns]).catch((e: Error) => {
    if (!/No such file|not found|Cannot remove/i.test(e.message)) throw e;
  });
}

/** A bridge in the root namespace, up, with no address: runs never share a route. */
export async function addBridge(name: string): Promise<void> {
  await ip(['link', 'add', name, 'type', 'bridge']);
  await disableIpv6(name);
  await ip(['link', 'set', name, 'up']);
}

/**
 * A veth pair: `hostSide` on `bridge` in the root namespace, `eth0` inside `ns` holding
 * `cidr`. Both ends up.
 */
export async function addVeth(hostSide: string, bridge: string, ns: string, cidr: string): Promise<void> {
  await ip(['link', 'add', hostSide, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
  await disableIpv6(hostSide);
  await ip(['link', 'set', hostSide, 'master', bridge, 'up']);
  await namespaceEnd(ns, cidr);
}

/**
 * A veth pair with no bridge: `hostSide` in the root namespace holding `hostCidr` (so the
 * root namespace routes that subnet to it), `eth0` inside `ns` holding `nsCidr`. Both ends up.
 */
export async function addPointToPointVeth(hostSide: string, hostCidr: string, ns: string, nsCidr: string): Promise<void> {
  await ip(['link', 'add', hostSide, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
  await disableIpv6(hostSide);
  await ip(['addr', 'add', hostCidr, 'dev', hostSide]);
  await ip(['link', 'set', hostSide, 'up']);
  await namespaceEnd(ns, nsCidr);
}

/** Root-namespace IPv4 addresses with their prefix lengths (`198.19.0.1/30`), every interface. */
export async function listAddresses(): Promise<string[]> {
  const links = JSON.parse(await ip(['-j', '-4', 'addr', 'show'])) as { addr_info?: { local: string; prefixlen: number }[] }[];
  return links.flatMap((l) => (l.addr_info ?? []).map((a) => `${a.local}/${a.prefixlen}`));
}

async function namespaceEnd(ns: string, cidr: string): Promise<void> {
  await ip(['-n', ns, 'addr', 'add', cidr, 'dev', 'eth0']);
  await ip(['-n', ns, 'link', 'set', 'eth0', 'up']);
}

/** Deletes a root-namespace interface (a veth takes its peer with it); absent is fine. */
export async function deleteInterface(name: string): Promise<void> {
  await ip(['link', 'del', name]).catch((e: Error) => {
    if (!/Cannot find device|does not exist/i.test(e.message)) throw e;
  });
}

export interface LinkCounters {
  txBytes: number;
  rxBytes: number;
}

/** Byte counters of `dev` inside `ns`, as the kernel counts them (headers included). */
export async function linkCounters(ns: string, dev = 'eth0'): Promise<LinkCounters> {
  const [link] = JSON.parse(await ip(['-n', ns, '-s', '-j', 'link', 'show', 'dev', dev])) as { stats64: { tx: { bytes: number }; rx: { bytes: number } } }[];
  return { txBytes: link!.stats64.tx.bytes, rxBytes: link!.stats64.rx.bytes };
}

/** argv that runs `cmd` inside `ns`, killed by the kernel if this process dies (even by SIGKILL). */
export function inNamespace(ns: string, cmd: string, args: string[]): [string, string[]] {
  return ['ip', ['netns', 'exec', ns, 'setpriv', '--pdeathsig', 'KILL', '--', cmd, ...args]];
}

/** A bridge port needs no IPv6 of its own; without it nothing but our traffic crosses the link. */
function disableIpv6(rootInterface: string): Promise<void> {
  return writeFile(`/proc/sys/net/ipv6/conf/${rootInterface}/disable_ipv6`, '1');
}

const NEIGH = '/proc/sys/net/ipv4/neigh/default/';

/**
 * Makes room for `entries` ARP entries. The kernel's neighbour table and its limits are shared
 * by all namespaces (Linux 6.18 here: gc_thresh3 1024 by default), and in a P2P mesh every host
 * resolves every other, so at 50 nodes (~3,500 entries) late hosts could resolve no one ("neighbor
 * table overflow", EHOSTUNREACH or connect timeouts at their start). Only ever raised, never
 * lowered: another run may be relying on it. Returns the old gc_thresh3 when it was raised.
 */
export async function ensureNeighbourCapacity(entries: number): Promise<number | undefined> {
  const old = Number((await readFile(NEIGH + 'gc_thresh3', 'utf8')).trim());
  if (old >= entries) return undefined;
  // gc_thresh2 (soft limit) and gc_thresh1 (no collection below) scaled alike; 3 last, so 2 ≤ 3 holds throughout.
  await writeFile(NEIGH + 'gc_thresh3', String(entries));
  await writeFile(NEIGH + 'gc_thresh2', String(Math.ceil(entries / 2)));
  await writeFile(NEIGH + 'gc_thresh1', String(Math.ceil(entries / 8)));
  return old;
}
