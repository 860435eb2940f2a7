import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import HyperDHT, { type DhtAddress } from 'hyperdht';
import Hyperswarm, { type PeerInfo, type SwarmConnection } from 'hyperswarm';
import { peerBans, peersConnected } from '../metrics/metrics.js';
import { stderrSourceLogger, type SourceLogger } from '../source/source-logger.js';
import { ANY_PORT } from './dht-bootstrap.js';
import { layerKey } from './layer-key.js';
import { PeerConnection, type PeerHost } from './peer-connection.js';
import { OWNER_GROUP_BYTES, PeerErrorCode } from './protocol.js';
import type { SharedLayer } from './shared-layer.js';
import { UploadGate } from './upload-gate.js';

export interface PeerSwarmOptions {
  /** DHT bootstrap nodes; lazybd never falls back to the public ones. */
  bootstrap: DhtAddress[];
  /** Address the DHT and peer connections bind to. Default 127.0.0.1. */
  host?: string;
  /** Upload limit to all peers together, bytes/s; 0 or absent: unlimited. */
  uploadRate?: number;
  /** Peers served at once (upload slots); others are choked. Default 8. */
  maxUploads?: number;
  /** A peer request with no DATA for this long falls through to the next source. Default 2000 ms. */
  requestTimeoutMs?: number;
  /** New local chunks are announced at most this often. Default 50 ms. */
  haveBatchMs?: number;
  log?: SourceLogger;
}

/** Bounds one HAVE-UPDATE frame. */
const MAX_UPDATE_CHUNKS = 4096;

/**
 * This node in the P2P swarm: one hyperswarm topic per shared layer (`layerKey`, so
 * the digest is not announced), a PeerConnection per connected peer, the upload gate
 * they share, batched HAVE-UPDATEs as chunks become local, and bans by public key for the
 * process's lifetime. Emits 'change' whenever what peers can serve may have changed.
 */
export class PeerSwarm extends EventEmitter implements PeerHost {
  readonly layers = new Map<string, SharedLayer>();
  readonly gate: UploadGate;
  readonly requestTimeoutMs: number;
  private readonly byBlob = new Map<string, { key: string; layer: SharedLayer }>();
  private readonly peers = new Map<string, PeerConnection>();
  private readonly banned = new Set<string>();
  private readonly pendingHaves = new Map<string, number[]>();
  private readonly unsubscribe: (() => void)[] = [];
  private haveTimer: NodeJS.Timeout | undefined;
  private readonly haveBatchMs: number;
  private readonly log: SourceLogger;
  private destroyed = false;

  private constructor(
    private readonly swarm: Hyperswarm,
    options: PeerSwarmOptions,
  ) {
    super();
    // Every read waiting for a holder listens for 'change': bounded by the reads in flight, not a leak.
    this.setMaxListeners(0);
    this.gate = new UploadGate({ rate: options.uploadRate, maxPeers: options.maxUploads ?? 8 });
    this.requestTimeoutMs = options.requestTimeoutMs ?? 2000;
    this.haveBatchMs = options.haveBatchMs ?? 50;
    this.log = options.log ?? stderrSourceLogger;
    swarm.on('connection', (socket, info) => this.onConnection(socket, info));
  }

  static start(options: PeerSwarmOptions): PeerSwarm {
    if (options.bootstrap.length === 0) throw new Error('a P2P swarm needs bootstrap nodes');
    // A random port, never one of hyperdht's defaults that a bootstrap node on this host may want.
    // Not firewalled: lazybd's DHT is a closed datacenter network whose hosts reach each other
    // directly. Left to assume a firewall, two nodes in separate network namespaces holepunch
    // and end half-open (one side connected, the other not; measured on hyperdht 6.32).
    const dht = new HyperDHT({ bootstrap: options.bootstrap, host: options.host ?? '127.0.0.1', port: ANY_PORT, firewalled: false });
    // The firewall closes over `self`: it runs for connections from the first join on.
    let self: PeerSwarm | undefined;
    const swarm = new Hyperswarm({ dht, firewall: (key) => self?.isBanned(key.toString('hex')) ?? false });
    self = new PeerSwarm(swarm, options);
    return self;
  }

  /** This node's identity (Noise public key). */
  get publicKey(): Buffer {
    return this.swarm.keyPair.publicKey;
  }

  get connected(): number {
    return this.peers.size;
  }

  /** Peer requests this node has served in full. */
  get uploads(): number {
    return this.gate.served;
  }

  get bans(): number {
    return this.banned.size;
  }

  isBanned(key: string): boolean {
    return this.banned.has(key);
  }

  /** The shared layer of a blob, if any: peer requests need its chunk table. */
  layerOf(blob: string): { key: string; layer: SharedLayer } | undefined {
    return this.byBlob.get(blob);
  }

  /** Open peers that said they hold all of chunks [first, first+count) of a layer (choked or not). */
  holders(key: string, first: number, count: number): PeerConnection[] {
    return [...this.peers.values()].filter((p) => p.isOpen && p.has(key, first, count));
  }

  /** The holders that have not choked us. */
  candidates(key: string, first: number, count: number): PeerConnection[] {
    return this.holders(key, first, count).filter((p) => !p.choked);
  }

  /**
   * Who fetches chunks no peer holds, from the group of `blobOffset` (OWNER_GROUP_BYTES): the
   * highest rendezvous hash of (key, layer, group) among this node and the open, unstalled peers
   * sharing the layer, less `exclude`. Undefined: this node. Every node computes the same owner
   * from the same peers, so a chunk a fleet needs at once is fetched once and spread from there;
   * and a request passed on always goes to a higher hash, so owners never ask in a circle.
   */
  ownerOf(key: string, blobOffset: number, exclude: ReadonlySet<PeerConnection>): PeerConnection | undefined {
    const group = Buffer.alloc(8);
    group.writeBigUInt64BE(BigInt(Math.floor(blobOffset / OWNER_GROUP_BYTES)));
    const layer = Buffer.from(key, 'hex');
    const rank = (publicKey: string): Buffer => createHash('sha256').update(Buffer.from(publicKey, 'hex')).update(layer).update(group).digest();
    let best = rank(this.publicKey.toString('hex'));
    let owner: PeerConnection | undefined;
    for (const peer of this.peers.values()) {
      if (!peer.isOpen || peer.stalled || exclude.has(peer) || !peer.offers(key)) continue;
      const r = rank(peer.key);
      if (r.compare(best) > 0) {
        best = r;
        owner = peer;
      }
    }
    return owner;
  }

  /** Resolves true at the next 'change' (a HAVE, an UNCHOKE, a peer gone), false after `ms` or once `signal` aborts. */
  nextChange(ms: number, signal: AbortSignal): Promise<boolean> {
    if (signal.aborted || ms <= 0) return Promise.resolve(false);
    return new Promise((resolve) => {
      const done = (changed: boolean): void => {
        clearTimeout(timer);
        this.off('change', onChange);
        signal.removeEventListener('abort', onAbort);
        resolve(changed);
      };
      const onChange = (): void => done(true);
      const onAbort = (): void => done(false);
      const timer = setTimeout(onAbort, ms);
      this.on('change', onChange);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Connected peers that sent their HAVE for at least one of these blobs. */
  peersSharing(blobs: readonly string[]): number {
    const keys = blobs.flatMap((b) => this.byBlob.get(b)?.key ?? []);
    return [...this.peers.values()].filter((p) => p.isOpen && keys.some((k) => p.offers(k))).length;
  }

  /**
   * Serves and fetches a layer through the swarm: joins its topic (as server and client),
   * offers it to connected peers, and announces its chunks as they become local. Resolves
   * once the topic is announced. A blob shared twice (two images) is shared once.
   */
  async share(layer: SharedLayer): Promise<void> {
    if (this.destroyed || this.byBlob.has(layer.blob)) return;
    const topic = layerKey(layer.blob);
    const key = topic.toString('hex');
    this.layers.set(key, layer);
    this.byBlob.set(layer.blob, { key, layer });
    this.unsubscribe.push(layer.onLocal((chunk) => this.queueHave(key, chunk)));
    for (const peer of this.peers.values()) peer.offer(key);
    await this.swarm.join(topic, { server: true, client: true }).flushed();
  }

  /** Disconnects a peer and refuses it until this process ends. */
  ban(peer: PeerConnection, why: string): void {
    if (this.banned.has(peer.key)) return;
    this.banned.add(peer.key);
    peerBans.inc();
    this.log.warn(`banned peer ${peer.key}: ${why}`);
    peer.disconnect({ code: PeerErrorCode.Protocol, message: why });
    this.emit('change');
  }

  misbehaved(peer: PeerConnection, why: string): void {
    this.ban(peer, why);
  }

  changed(): void {
    this.emit('change');
  }

  closed(peer: PeerConnection): void {
    if (this.peers.get(peer.key) === peer) {
      this.peers.delete(peer.key);
      peersConnected.dec();
    }
    this.emit('change');
  }

  /** Leaves every topic and closes every connection and the DHT node. */
  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    clearTimeout(this.haveTimer);
    for (const off of this.unsubscribe.splice(0)) off();
    for (const peer of [...this.peers.values()]) peer.disconnect();
    // Unannounces our topics: with the DHT unreachable that waits out its queries (~5 s);
    // a forced destroy is no quicker (the server's close waits the same) and leaves timers behind.
    await this.swarm.destroy();
  }

  private onConnection(socket: SwarmConnection, info: PeerInfo): void {
    const key = info.publicKey.toString('hex');
    socket.on('error', () => {});
    if (this.destroyed || this.banned.has(key)) {
      socket.destroy();
      return;
    }
    // hyperswarm keeps one connection per peer; a new one replaces the old.
    this.peers.get(key)?.disconnect();
    const peer = new PeerConnection(socket, info.publicKey, this);
    this.peers.set(key, peer);
    peersConnected.inc();
    this.emit('change');
  }

  private queueHave(key: string, chunk: number): void {
    let pending = this.pendingHaves.get(key);
    if (!pending) this.pendingHaves.set(key, (pending = []));
    pending.push(chunk);
    this.haveTimer ??= setTimeout(() => this.flushHaves(), this.haveBatchMs).unref();
  }

  private flushHaves(): void {
    this.haveTimer = undefined;
    for (const [key, chunks] of this.pendingHaves) {
      for (let at = 0; at < chunks.length; at += MAX_UPDATE_CHUNKS) {
        const batch = chunks.slice(at, at + MAX_UPDATE_CHUNKS);
        for (const peer of this.peers.values()) peer.announce(key, batch);
      }
    }
    this.pendingHaves.clear();
  }
}
