import { sleep } from './abortable-sleep.js';

/**
 * Paces background transfer to `rate` bytes per second. The bucket starts empty and holds
 * at most `burst` bytes of unused allowance, so over any stretch of T seconds at most
 * rate × T + burst bytes are let through. Takers wait in turn: a take that overdraws the
 * bucket waits until the debt is paid.
 */
export class TokenBucket {
  private tokens = 0;
  private last = performance.now();

  constructor(
    private readonly rate: number,
    private readonly burst: number,
  ) {}

  /** Resolves when `bytes` may be sent; early if `signal` aborts. */
  async take(bytes: number, signal: AbortSignal): Promise<void> {
    const now = performance.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) * this.rate) / 1000);
    this.last = now;
    this.tokens -= bytes;
    if (this.tokens < 0) await sleep((-this.tokens / this.rate) * 1000, signal);
  }
}
