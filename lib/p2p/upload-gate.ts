import { TokenBucket } from '../source/token-bucket.js';

/** A quarter of a default 1 MiB run: short bursts, so the limit holds over short spans too. */
const MAX_BURST = 256 * 1024;

/** The peers this node refused for lack of upload slots: they hear UNCHOKE when one frees. */
export interface ChokedPeer {
  unchoke(): void;
}

export interface UploadLimits {
  /** Upload bytes per second to all peers together; 0 or absent: unlimited. */
  rate?: number;
  /** Requests served at once, to all peers together. */
  maxConcurrent: number;
}

/**
 * Keeps serving neighbours from starving the node's own reads: at most `maxConcurrent`
 * requests are served at once (the rest are refused and their peers choked until a slot
 * frees), and uploaded bytes are paced by one token bucket.
 */
export class UploadGate {
  private active = 0;
  private readonly bucket: TokenBucket | undefined;
  private readonly choked = new Set<ChokedPeer>();
  /** Unused allowance the bucket may save up, bytes: over T seconds at most rate × T + burst go out. */
  readonly burst: number;
  /** Requests served in full. */
  served = 0;

  constructor(private readonly limits: UploadLimits) {
    this.burst = limits.rate ? Math.min(limits.rate, MAX_BURST) : Infinity;
    this.bucket = limits.rate ? new TokenBucket(limits.rate, this.burst) : undefined;
  }

  /** A slot, or false (and `peer` is remembered for UNCHOKE) if all are taken. */
  tryAcquire(peer: ChokedPeer): boolean {
    if (this.active >= this.limits.maxConcurrent) {
      this.choked.add(peer);
      return false;
    }
    this.active++;
    return true;
  }

  release(): void {
    this.active--;
    if (this.active >= this.limits.maxConcurrent || this.choked.size === 0) return;
    const waiting = [...this.choked];
    this.choked.clear();
    for (const peer of waiting) peer.unchoke();
  }

  /** Forgets a peer that went away. */
  forget(peer: ChokedPeer): void {
    this.choked.delete(peer);
  }

  /** Waits until `bytes` may go out. */
  pace(bytes: number, signal: AbortSignal): Promise<void> {
    return this.bucket ? this.bucket.take(bytes, signal) : Promise.resolve();
  }
}
