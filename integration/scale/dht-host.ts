import { firstJsonLine, spawnLazybd } from './lazybd-process.js';
import { DHT_ADDRESS, DHT_PORT } from './address-plan.js';
import type { Datacenter, Host } from './topology.js';
import type { Owned } from '../support/processes.js';

/**
 * The P2P modes' closed DHT: `lazybd p2p-bootstrap` in its own namespace (a bootstrap node
 * and the two persistent nodes hyperswarm needs to find peers in a closed network).
 * Resolves with the `--p2p-bootstrap` value for the nodes.
 */
export async function startDhtHost(dc: Datacenter, host: Host, timeoutMs: number): Promise<{ bootstrap: string; process: Owned }> {
  const p = spawnLazybd(dc, host, ['p2p-bootstrap', '--listen', `${DHT_ADDRESS}:${DHT_PORT}`, '--json']);
  try {
    const { bootstrap } = await firstJsonLine<{ bootstrap: string }>(p, 'the DHT bootstrap', timeoutMs);
    return { bootstrap, process: p };
  } catch (e) {
    await p.stop();
    throw e;
  }
}
