import { LazybdError } from '../errors.js';
import { RegistryClient } from '../registry/registry-client.js';
import type { BlobRangeSource, ChunkRun } from '../source/blob-range-source.js';
import { memberId, rendezvousOrder } from './rendezvous.js';

export interface SupernodeSetOptions {
  /** Supernode base URLs, as every node and `preheat` are given them. */
  urls: string[];
  /** Bearer token the supernodes accept. */
  token: string;
  ca?: string | Buffer;
  insecureSkipVerify?: boolean;
  /** Limits for one request to one supernode: a slow one is left for the next, then the registry. */
  timeouts?: { connectMs: number; headersMs: number; bodyMs: number };
}

/** A supernode is skipped this long after it failed, doubling with each failure up to the maximum. */
const DOWN_MIN_MS = 1000;
const DOWN_MAX_MS = 30_000;
const DEFAULT_TIMEOUTS = { connectMs: 2000, headersMs: 4000, bodyMs: 4000 };

/** Every supernode failed or is resting: the chain moves on to the registry at once. */
export class SupernodeUnavailableError extends LazybdError {
  readonly retryable = false;
  constructor(message: string) {
    super('E_SUPERNODE_UNAVAILABLE', message, { exitStatus: 5 });
  }
}

class Member {
  readonly id: string;
  private readonly clients = new Map<string, RegistryClient>();
  private downUntil = 0;
  private downFor = 0;

  constructor(
    readonly url: string,
    private readonly options: SupernodeSetOptions,
  ) {
    this.id = memberId(url);
  }

  get up(): boolean {
    return Date.now() >= this.downUntil;
  }

  /** A client that asks this supernode for `registry`'s content (`?ns=`). */
  client(registry: string): RegistryClient {
    let c = this.clients.get(registry);
    if (!c) {
      const u = new URL(this.url);
      c = new RegistryClient({
        registry: u.host,
        plainHttp: u.protocol === 'http:',
        authorization: `Bearer ${this.options.token}`,
        query: { ns: registry },
        ca: this.options.ca,
        insecureSkipVerify: this.options.insecureSkipVerify,
        authFiles: false,
        timeouts: this.options.timeouts ?? DEFAULT_TIMEOUTS,
        // Failing over is ours to do: a supernode that sends a whole blob for a range is broken.
        rangeFallback: 'refuse',
      });
      this.clients.set(registry, c);
    }
    return c;
  }

  succeeded(): void {
    this.downFor = 0;
    this.downUntil = 0;
  }

  failed(): void {
    this.downFor = Math.min(DOWN_MAX_MS, Math.max(DOWN_MIN_MS, this.downFor * 2));
    this.downUntil = Date.now() + this.downFor;
  }

  close(): Promise<unknown> {
    return Promise.allSettled([...this.clients.values()].map((c) => c.close()));
  }
}

/**
 * The datacenter's supernodes as this node sees them: each chunk has a home among them by
 * rendezvous hashing of its digest (so the fleet's requests for a chunk meet on one
 * supernode, which fetches it from the registry once), the others are its failover order.
 * A supernode that fails rests for a while (1 s, doubling to 30 s) and is then tried again.
 */
export class SupernodeSet {
  readonly members: Member[];
  private readonly timeouts: NonNullable<SupernodeSetOptions['timeouts']>;

  constructor(options: SupernodeSetOptions) {
    this.timeouts = options.timeouts ?? DEFAULT_TIMEOUTS;
    this.members = options.urls.map((u) => new Member(u, options));
    if (new Set(this.members.map((m) => m.id)).size !== this.members.length) throw new LazybdError('E_USAGE', 'a supernode is named twice', { exitStatus: 2 });
  }

  /** The clients to try for manifests and metadata of `registry`'s images, live ones first. */
  clientsFor(registry: string): RegistryClient[] {
    return [...this.members].sort((a, b) => Number(b.up) - Number(a.up)).map((m) => m.client(registry));
  }

  /** The chain link for blobs of `repository` on `registry`. */
  source(registry: string, repository: string): BlobRangeSource {
    return new SupernodeSource(this.members, registry, repository, this.timeouts);
  }

  async close(): Promise<void> {
    await Promise.all(this.members.map((m) => m.close()));
  }
}

/** A link of the source chain: asks each chunk's home supernode, failing over to the others. */
class SupernodeSource implements BlobRangeSource {
  readonly name = 'supernode';
  /** Room for one failover within the chain's attempt. */
  readonly attemptTimeoutMs: number;
  private readonly ids: string[];

  constructor(
    private readonly members: Member[],
    private readonly registry: string,
    private readonly repository: string,
    timeouts: NonNullable<SupernodeSetOptions['timeouts']>,
  ) {
    this.ids = members.map((m) => m.id);
    this.attemptTimeoutMs = 2 * (timeouts.connectMs + timeouts.headersMs) + 1000;
  }

  async fetch(blob: string, offset: number, length: number, signal: AbortSignal, run: ChunkRun): Promise<Buffer> {
    // Consecutive chunks with the same home go in one request; homes are asked in parallel.
    const groups: { order: number[]; offset: number; length: number }[] = [];
    for (let i = run.first; i < run.first + run.count; i++) {
      const order = this.liveFirst(rendezvousOrder(this.ids, run.table.digest(i)));
      const last = groups[groups.length - 1];
      const at = run.table.offset(i);
      if (last && last.order[0] === order[0]) last.length = at + run.table.length(i) - last.offset;
      else groups.push({ order, offset: at, length: run.table.length(i) });
    }
    if (groups[0]!.offset !== offset || groups.reduce((n, g) => n + g.length, 0) !== length) throw new RangeError(`range ${offset}+${length} is not chunks ${run.first}+${run.count}`);
    const parts = await Promise.all(groups.map((g) => this.fetchGroup(blob, g.order, g.offset, g.length, signal)));
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts, length);
  }

  /** Live members in rendezvous order, then the resting ones: nothing is asked of them unless all else failed. */
  private liveFirst(order: number[]): number[] {
    return [...order.filter((i) => this.members[i]!.up), ...order.filter((i) => !this.members[i]!.up)];
  }

  private async fetchGroup(blob: string, order: number[], offset: number, length: number, signal: AbortSignal): Promise<Buffer> {
    const why: string[] = [];
    for (const i of order) {
      const member = this.members[i]!;
      if (!member.up) {
        why.push(`${member.id}: resting after a failure`);
        continue;
      }
      try {
        const bytes = await member.client(this.registry).readBlobRange(this.repository, blob, offset, length, signal);
        member.succeeded();
        return bytes;
      } catch (e) {
        if (signal.aborted) throw e;
        member.failed();
        why.push(`${member.id}: ${(e as Error).message}`);
      }
    }
    throw new SupernodeUnavailableError(why.join('; '));
  }
}
