import type { PeerSwarmOptions } from '../p2p/peer-swarm.js';
import { UsageError } from './usage-error.js';

export interface P2pOptions {
  /** false with --no-p2p; true with --p2p (which then needs a bootstrap). */
  p2p?: boolean;
  'p2p-bootstrap'?: string;
  'p2p-host'?: string;
  /** MB/s; this and the next default in the command table (serving neighbours must never crowd out the node's own reads). */
  'p2p-upload-rate': number;
  'p2p-max-uploads': number;
}

/**
 * The swarm settings `serve --p2p-bootstrap` asks for, or undefined; checked before
 * anything starts. P2P is on when bootstrap nodes are given and --no-p2p is not: lazybd
 * never joins the public DHT, so nothing reaches the internet unless told to.
 */
export function p2pSettings(opts: P2pOptions): PeerSwarmOptions | undefined {
  if (opts.p2p === false) return undefined;
  const list = opts['p2p-bootstrap'];
  if (!list) {
    if (opts.p2p) throw new UsageError('--p2p needs --p2p-bootstrap HOST:PORT[,HOST:PORT...] (lazybd never joins the public DHT)');
    return undefined;
  }
  const bootstrap = String(list)
    .split(',')
    .map((entry) => dhtAddress('--p2p-bootstrap takes HOST:PORT[,HOST:PORT...]', entry));
  return { bootstrap, host: opts['p2p-host'], uploadRate: opts['p2p-upload-rate'] * 1e6, maxUploads: opts['p2p-max-uploads'] };
}

/** An IPv4 HOST:PORT of a DHT node (hyperdht binds and dials IPv4 only). */
export function dhtAddress(usage: string, entry: string): { host: string; port: number } {
  const m = /^(\d{1,3}(?:\.\d{1,3}){3}|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(entry.trim());
  if (!m || Number(m[2]) > 65535) throw new UsageError(`${usage}, not ${entry}`);
  return { host: m[1]!, port: Number(m[2]) };
}
