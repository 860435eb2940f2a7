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
