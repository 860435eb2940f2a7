import { TokenBucket } from '../source/token-bucket.js';

/** A peer this node uploads to: it hears UNCHOKE when a slot frees after it was refused. */
export interface ChokedPeer {
  unchoke(): void;
}

export interface UploadLimits {
  /** Upload bytes per second to all peers together; 0 or absent: unlimited. */
  rate?: number;
  /** Peers served at once (upload slots). */
  maxPeers: number;
}

/** A quarter of a default 1 MiB run: short bursts, so the limit holds over short spans too. */
const MAX_BURST = 256 * 1024;

/**
 * Keeps serving neighbours from starving the node's own reads. Upload slots are per peer,
 * as in BitTorrent: a peer holds one while any of its requests is being served, so one
 * neighbour reading with deep queues is served whole; a peer beyond `maxPeers` is refused
 * and choked until a slot frees. Uploaded bytes of all peers are paced by one token bucket.
 */
export class UploadGate {
  private readonly bucket: TokenBucket | undefined;
  private readonly serving = new Set<ChokedPeer>();
  private readonly choked = new Set<ChokedPeer>();
  /** Unused allowance the bucket may save up, bytes: over T seconds at most rate × T + burst go out. */
  readonly burst: number;
  /** Requests served in full. */
  served = 0;

  constructor(private readonly limits: UploadLimits) {
    this.burst = limits.rate ? Math.min(limits.rate, MAX_BURST) : Infinity;
    this.bucket = limits.rate ? new TokenBucket(limits.rate, this.burst) : undefined;
  }

  /** True if `peer` holds or gets a slot; false (and it is remembered for UNCHOKE) if all are taken. */
  admit(peer: ChokedPeer): boolean {
    if (this.serving.has(peer)) return true;
    if (this.serving.size >= this.limits.maxPeers) {
      this.choked.add(peer);
      return false;
    }
    this.serving.add(peer);
    return true;
  }

  /** The peer has nothing in service any more: its slot goes to the choked ones. */
  release(peer: ChokedPeer): void {
    if (!this.serving.delete(peer) || this.choked.size === 0) return;
    const waiting = [...this.choked];
    this.choked.clear();
    for (const p of waiting) p.unchoke();
  }

  /** A peer that went away. */
  forget(peer: ChokedPeer): void {
    this.choked.delete(peer);
    this.release(peer);
  }

  /** Waits until `bytes` may go out. */
  pace(bytes: number, signal: AbortSignal): Promise<void> {
    return this.bucket ? this.bucket.take(bytes, signal) : Promise.resolve();
  }
}
