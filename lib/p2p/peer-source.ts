import type { BlobRange, BlobRangeSource } from '../source/blob-range-source.js';
import { PeerUnavailableError } from './errors.js';
import { MAX_REQUEST_CHUNKS } from './protocol.js';
import { choosePeer } from './peer-choice.js';
import type { PeerConnection } from './peer-connection.js';
import type { PeerSwarm } from './peer-swarm.js';

/** Peers whose request failed (refused, dropped) before the chain moves on. */
const MAX_PEERS_PER_RANGE = 3;
/** Requests refused as busy (CHOKE) for one range before the chain moves on: a bound, whatever peers say. */
const MAX_BUSY_PER_RANGE = 16;

/**
 * The 'peer' link of the source chain. A range goes to one peer that holds all of its
 * chunks, picked at random weighted by latency × load (so the best peers share the work
 * rather than one taking it all). When no peer holds it yet, it goes to its owner (see
 * PeerSwarm.ownerOf), which fetches it through its own sources and serves it: a fleet
 * reading one image at once fetches each chunk upstream once. When the owner is this node,
 * the chain moves on (supernode, registry) and the chunks become its neighbours' to take.
 *
 * Peers that are busy (choked) are waited for, up to the peer request timeout in all,
 * since a chunk a neighbour is about to hold costs the supernode nothing. A peer that
 * refuses or drops a request is followed by another (up to three); once one goes quiet,
 * or the wait is over, it throws a non-retryable error and the chain moves on. The chain
 * verifies what comes back and reports corrupt responses here; their sender is banned.
 */
export class PeerSource implements BlobRangeSource {
  readonly name = 'peer';
  /** Which peer sent each response still held by the chain; weak, so it costs nothing once verified. */
  private readonly sentBy = new WeakMap<Buffer, PeerConnection>();

  constructor(
    private readonly swarm: PeerSwarm,
    private readonly random: () => number = Math.random,
  ) {}

  async fetch(blob: string, offset: number, length: number, signal: AbortSignal): Promise<Buffer> {
    const shared = this.swarm.layerOf(blob);
    if (!shared) throw new PeerUnavailableError(`${blob} is not shared with peers`);
    const table = shared.layer.chunks;
    const first = table.indexOfStored(offset);
    const last = table.indexOfStored(offset + length - 1);
    const count = last - first + 1;
    if (table.offset(first) !== offset || table.offset(last) + table.length(last) !== offset + length || count > MAX_REQUEST_CHUNKS) {
      throw new PeerUnavailableError(`[${offset}, ${offset + length}) of ${blob} is not a run of at most ${MAX_REQUEST_CHUNKS} whole chunks`);
    }
    const waitUntil = performance.now() + this.swarm.requestTimeoutMs;
    const failed = new Set<PeerConnection>();
    const failures: string[] = [];
    let busy = 0;
    while (failed.size < MAX_PEERS_PER_RANGE && busy < MAX_BUSY_PER_RANGE && !signal.aborted) {
      const holders = this.swarm.holders(shared.key, first, count).filter((p) => !failed.has(p));
      const holder = choosePeer(holders.filter((p) => !p.choked), this.random);
      const peer = holder ?? (holders[0] || this.swarm.ownerOf(shared.key, offset, failed));
      if (!peer) {
        failures.push('this node is the owner: it fetches them');
        break;
      }
      if (peer.choked) {
        // Every holder, or the owner, is serving others: they, and those they serve, will hold the chunks soon.
        if (await this.swarm.nextChange(waitUntil - performance.now(), signal)) continue;
        failures.push(`waited ${this.swarm.requestTimeoutMs} ms for a peer`);
        break;
      }
      try {
        const bytes = await peer.request(shared.key, table, first, count, signal, !holder);
        this.sentBy.set(bytes, peer);
        return bytes;
      } catch (e) {
        failures.push((e as Error).message);
        // A stall has used the time; a busy peer is choked now (the loop waits for it or another).
        if (signal.aborted || (e instanceof PeerUnavailableError && e.timedOut)) break;
        if (peer.choked && peer.isOpen) busy++;
        else failed.add(peer);
      }
    }
    throw new PeerUnavailableError(failures.length ? failures.join('; ') : `no peer has chunks ${first}-${last} of ${blob}`);
  }

  reportCorrupt(response: Buffer, blob: string, chunks: readonly BlobRange[]): void {
    const peer = this.sentBy.get(response);
    if (!peer) return;
    this.sentBy.delete(response);
    const at = chunks.map((c) => c.offset).join(', ');
    this.swarm.ban(peer, `sent data for ${blob} that fails verification (chunks at blob offset ${at})`);
  }
}
