/**
 * Where each host of the datacenter sits. Everything is inside 198.18.0.0/15 (RFC 2544,
 * benchmarking): one /16 on one bridge, so every namespace reaches every other directly.
 *
 *   198.18.0.2        registry (the origin docker-registry)
 *   198.18.0.3        mirror (docker-registry as a pull-through cache), mirror mode only
 *   198.18.0.4        control: where the harness pushes, records the trace, preheats, scrapes
 *   198.18.0.5–.9     reserved for the P2P modes: a hyperswarm DHT bootstrapper and two
 *                     persistent DHT nodes every node namespace can reach
 *   198.18.0.10–.249  supernodes s0, s1, …
 *   198.18.1.1 …      nodes n0, n1, … (250 a /24, from 198.18.1.0/24 upwards)
 *
 * 198.19.0.0/16, the other half, holds point-to-point links from the root namespace (the
 * cold-start bench's shaped registry): a /30 each, .1 the root side, .2 the namespace. A run
 * takes the first /30 no root-namespace address is in, so concurrent runs do not collide.
 */
export const PREFIX_LENGTH = 16;
export const REGISTRY_ADDRESS = '198.18.0.2';
export const MIRROR_ADDRESS = '198.18.0.3';
export const CONTROL_ADDRESS = '198.18.0.4';
/** The P2P modes' DHT (`lazybd p2p-bootstrap`: a bootstrap node plus two persistent nodes) listens here. */
export const DHT_ADDRESS = '198.18.0.5';
export const DHT_PORT = 49737;
/** docker-registry and the supernode listen here on their host's address. */
export const SERVICE_PORT = 5000;
/** Each node's --metrics endpoint, on its own address. */
export const NODE_METRICS_PORT = 9100;

const MAX_SUPERNODES = 240;
const NODES_PER_SUBNET = 250;
const MAX_NODES = NODES_PER_SUBNET * 250;

export function supernodeAddress(i: number): string {
  if (!(i >= 0 && i < MAX_SUPERNODES)) throw new RangeError(`at most ${MAX_SUPERNODES} supernodes`);
  return `198.18.0.${10 + i}`;
}

export function nodeAddress(i: number): string {
  if (!(i >= 0 && i < MAX_NODES)) throw new RangeError(`at most ${MAX_NODES} nodes`);
  return `198.18.${1 + Math.floor(i / NODES_PER_SUBNET)}.${1 + (i % NODES_PER_SUBNET)}`;
}

const POINT_TO_POINT_LINKS = 1 << 14;

/** The `i`th /30 of 198.19.0.0/16: the root side's and the namespace side's address. */
export function pointToPointLink(i: number): { root: string; ns: string; prefixLength: 30 } {
  if (!(i >= 0 && i < POINT_TO_POINT_LINKS)) throw new RangeError(`at most ${POINT_TO_POINT_LINKS} point-to-point links`);
  const c = i >> 6;
  const d = (i & 63) << 2;
  return { root: `198.19.${c}.${d + 1}`, ns: `198.19.${c}.${d + 2}`, prefixLength: 30 };
}

/** The first point-to-point link none of `taken` (addresses, `a.b.c.d/len` or bare) falls in. */
export function freePointToPointLink(taken: string[]): ReturnType<typeof pointToPointLink> {
  const used = new Set(taken.map((a) => a.split('/')[0]!).filter((a) => a.startsWith('198.19.')).map((a) => {
    const [, , c, d] = a.split('.').map(Number);
    return (c! << 6) | (d! >> 2);
  }));
  for (let i = 0; i < POINT_TO_POINT_LINKS; i++) if (!used.has(i)) return pointToPointLink(i);
  throw new Error('every point-to-point link in 198.19.0.0/16 is in use');
}
