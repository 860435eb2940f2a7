import { startDhtBootstrap } from '../p2p/dht-bootstrap.js';
import { dhtAddress } from './p2p-options.js';
import type { HostPort } from './option-kinds.js';
import { printResult, type GlobalOptions } from './run-command.js';

export interface P2pBootstrapOptions extends GlobalOptions {
  /** Default in the command table. */
  listen: HostPort;
}

/**
 * `lazybd p2p-bootstrap`: the DHT of a closed network (a bootstrap node and two persistent
 * nodes) that `serve --p2p-bootstrap` points at; runs until SIGINT/SIGTERM.
 */
export async function p2pBootstrapCommand(opts: P2pBootstrapOptions): Promise<void> {
  const { host, port } = dhtAddress('--listen takes an IPv4 HOST:PORT (port 0: any)', `${opts.listen.host}:${opts.listen.port}`);
  const dht = await startDhtBootstrap(host, port);
  const at = dht.bootstrap.map((b) => `${b.host}:${b.port}`).join(',');
  printResult(opts, { bootstrap: at, pid: process.pid }, () => `DHT bootstrap at ${at}\nnodes join with: lazybd serve <image> --p2p-bootstrap ${at}`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await dht.close();
}
