import HyperDHT, { type DhtAddress } from 'hyperdht';

/**
 * An empty port range: hyperdht binds a random free port. (Port 0 or none means
 * 49737-49741 first, which would let any lazybd node take a bootstrap node's well-known port.)
 */
export const ANY_PORT: [number, number] = [0, 0];

export interface DhtBootstrap {
  /** Where nodes of this network bootstrap from (`--p2p-bootstrap`). */
  readonly bootstrap: DhtAddress[];
  close(): Promise<void>;
}

/**
 * A closed DHT of its own: a bootstrap node on host:port (0: any free port) and two
 * persistent nodes, as hyperdht's own testnet runs it. A lone bootstrap node is not
 * enough: hyperswarm's announces and lookups need a few non-ephemeral nodes to land on,
 * otherwise peers never find each other. Nothing outside `bootstrap` is contacted.
 */
export async function startDhtBootstrap(host = '127.0.0.1', port = 0): Promise<DhtBootstrap> {
  const nodes: HyperDHT[] = [];
  const close = async (): Promise<void> => {
    for (const node of nodes.reverse()) await node.destroy({ force: true });
  };
  try {
    // A given port or none: not hyperdht's habit of taking the next free one after it.
    const first = new HyperDHT({ ephemeral: false, firewalled: false, bootstrap: [], port: port || ANY_PORT, anyPort: false, host });
    nodes.push(first);
    await first.fullyBootstrapped();
    const bootstrap = [{ host, port: first.address().port }];
    for (let i = 0; i < 2; i++) {
      const node = new HyperDHT({ ephemeral: false, firewalled: false, bootstrap, host, port: ANY_PORT });
      nodes.push(node);
      await node.fullyBootstrapped();
    }
    return { bootstrap, close };
  } catch (e) {
    await close();
    throw e;
  }
}
