import type { BlobRange, BlobRangeSource } from '../source/blob-range-source.js';
import { PeerUnavailableError } from './errors.js';
import { MAX_REQUEST_CHUNKS } from './protocol.js';
import { choosePeer } from './peer-choice.js';
import type { PeerConnection } from './peer-connection.js';
import type { PeerSwarm } from './peer-swarm.js';

/** Peers asked for one range before the chain moves on. */
const MAX_PEERS_PER_RANGE = 3;

/**
 * The 'peer' link of the source chain. A range goes to one peer that holds all of its
 * chunks, picked at random weighted by latency × load (so the best peers share the work
 * rather than one taking it all). A peer that refuses or drops the request is followed
 * by another (up to three); with none left, or once one goes quiet, it throws a
 * non-retryable error and the chain moves on (supernode, registry). The chain verifies
 * what comes back and reports corrupt responses here; the peer that sent one is banned.
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
    const first = table.indexOf(offset);
    const last = table.indexOf(offset + length - 1);
    const count = last - first + 1;
    if (table.offset(first) !== offset || table.offset(last) + table.length(last) !== offset + length || count > MAX_REQUEST_CHUNKS) {
      throw new PeerUnavailableError(`[${offset}, ${offset + length}) of ${blob} is not a run of at most ${MAX_REQUEST_CHUNKS} whole chunks`);
    }
    const tried = new Set<PeerConnection>();
    const failures: string[] = [];
    while (tried.size < MAX_PEERS_PER_RANGE) {
      const peer = choosePeer(this.swarm.candidates(shared.key, first, count).filter((p) => !tried.has(p)), this.random);
      if (!peer) break;
      tried.add(peer);
      try {
        const bytes = await peer.request(shared.key, table, first, count, signal);
        this.sentBy.set(bytes, peer);
        return bytes;
      } catch (e) {
        failures.push((e as Error).message);
        // A refusal or a dropped connection costs a round trip: another peer may still be quick. A stall has used the time.
        if (signal.aborted || (e instanceof PeerUnavailableError && e.timedOut)) break;
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
