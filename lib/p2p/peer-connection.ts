import { once } from 'node:events';
import type { Duplex } from 'node:stream';
import type { ChunkTable } from '../format/chunk-table.js';
import { peerBytes, peerFetchThrough, peerRequestSeconds } from '../metrics/metrics.js';
import { ChunkBitset } from '../source/chunk-bitset.js';
import { PeerProtocolError, PeerUnavailableError } from './errors.js';
import { FrameDecoder, encodeFrame, type PeerMessage } from './messages.js';
import { Msg, PROTOCOL_VERSION, PeerErrorCode } from './protocol.js';
import type { SharedLayer } from './shared-layer.js';
import type { ChokedPeer, UploadGate } from './upload-gate.js';

/** What a connection needs from the swarm that owns it. */
export interface PeerHost {
  /** The layers this node shares, by layer key (hex). */
  readonly layers: ReadonlyMap<string, SharedLayer>;
  readonly gate: UploadGate;
  /** A request with no DATA for this long is given up (and the peer deprioritised). */
  readonly requestTimeoutMs: number;
  /** What the peer can serve changed (HAVE, choke, close): waiting readers may look again. */
  changed(): void;
  /** The peer broke the protocol or sent data that cannot be right: ban it. */
  misbehaved(peer: PeerConnection, why: string): void;
  closed(peer: PeerConnection): void;
}

interface Outgoing {
  table: ChunkTable;
  layer: string;
  first: number;
  parts: (Buffer | undefined)[];
  got: number;
  started: number;
  timer: NodeJS.Timeout;
  signal: AbortSignal;
  onAbort: () => void;
  resolve: (bytes: Buffer) => void;
  reject: (err: Error) => void;
}

/** Until a peer has answered anything: cheap enough that new peers get tried. */
const INITIAL_MS_PER_CHUNK = 2;
/** Weight of the newest sample in the latency average. */
const EWMA_WEIGHT = 0.2;
/** One peer's requests served at once; more are refused (its reads fall through), not queued without bound. */
const MAX_REQUESTS_IN_SERVICE = 32;
/** How long a closing connection may take to flush its last frame. */
const CLOSE_GRACE_MS = 2000;
/** A peer that let a request time out is no chunk owner for this long: others fetch what it would have. */
const STALL_PENALTY_MS = 30_000;

/**
 * One connected peer over its encrypted stream: the HELLO exchange, what the peer holds
 * (its HAVE bitfields), our requests to it (with an idle timeout and a latency average
 * for peer choice), and its requests to us, served from verified local chunks through
 * the upload gate.
 */
export class PeerConnection implements ChokedPeer {
  /** Its Noise public key, hex: its identity for bans. */
  readonly key: string;
  /** True once the peer refused us for lack of upload slots, until it unchokes. */
  choked = false;
  private helloSeen = false;
  private closed = false;
  private chokedThem = false;
  private readonly decoder: FrameDecoder;
  private readonly remoteHave = new Map<string, ChunkBitset>();
  private readonly haveSent = new Set<string>();
  private readonly outgoing = new Map<number, Outgoing>();
  private readonly serving = new Map<number, AbortController>();
  private nextId = 1;
  private msPerChunk = INITIAL_MS_PER_CHUNK;
  private stalledUntil = 0;

  constructor(
    private readonly socket: Duplex,
    publicKey: Buffer,
    private readonly host: PeerHost,
  ) {
    this.key = publicKey.toString('hex');
    this.decoder = new FrameDecoder((m) => this.handle(m));
    socket.on('data', (data: Buffer) => {
      if (this.closed) return;
      try {
        this.decoder.push(data);
      } catch (e) {
        this.protocolError(e);
      }
    });
    socket.on('error', () => this.close());
    socket.on('close', () => this.close());
    this.send({ t: Msg.Hello, v: PROTOCOL_VERSION, layers: [...host.layers.keys()].map((hex) => Buffer.from(hex, 'hex')) });
  }

  /** Short form of the key for logs. */
  get label(): string {
    return this.key.slice(0, 12);
  }

  get isOpen(): boolean {
    return !this.closed;
  }

  /** Lower is better: recent time per chunk, scaled by how busy we keep it. */
  get score(): number {
    return this.msPerChunk * (1 + this.outgoing.size);
  }

  /** Whether a request to it timed out lately. */
  get stalled(): boolean {
    return performance.now() < this.stalledUntil;
  }

  /** Whether it said it holds every chunk of [first, first+count) of the layer. */
  has(layer: string, first: number, count: number): boolean {
    return this.remoteHave.get(layer)?.hasAll(first, count) ?? false;
  }

  /** Whether it told us what it holds of the layer (its HAVE came). */
  offers(layer: string): boolean {
    return this.remoteHave.has(layer);
  }

  /** A layer this node started sharing since the HELLO: tell the peer what we hold of it. */
  offer(layer: string): void {
    if (this.helloSeen && !this.haveSent.has(layer)) this.sendHave(layer);
  }

  /** New local chunks of a layer (batched by the swarm), for peers that heard our HAVE. */
  announce(layer: string, chunks: number[]): void {
    if (!this.closed && this.haveSent.has(layer)) this.send({ t: Msg.HaveUpdate, layer: Buffer.from(layer, 'hex'), chunks });
  }

  /**
   * Chunks [first, first+count) of a layer, unverified, concatenated. With `fetch`, the peer
   * fetches what it does not hold (it owns these chunks). Rejects with PeerUnavailableError.
   */
  request(layer: string, table: ChunkTable, first: number, count: number, signal: AbortSignal, fetch = false): Promise<Buffer> {
    if (this.closed) return Promise.reject(new PeerUnavailableError(`peer ${this.label} disconnected`));
    if (signal.aborted) return Promise.reject(new PeerUnavailableError(`request to peer ${this.label} aborted`));
    const id = this.nextId++;
    return new Promise<Buffer>((resolve, reject) => {
      const onAbort = (): void => {
        this.send({ t: Msg.Cancel, id });
        this.finish(id, 'error', new PeerUnavailableError(`request to peer ${this.label} aborted`));
      };
      const o: Outgoing = { table, layer, first, parts: new Array(count), got: 0, started: performance.now(), timer: this.idleTimer(id), signal, onAbort, resolve, reject };
      this.outgoing.set(id, o);
      signal.addEventListener('abort', onAbort, { once: true });
      const message: PeerMessage = { t: Msg.Request, id, layer: Buffer.from(layer, 'hex'), first, count };
      if (fetch) {
        message.fetch = true;
        peerFetchThrough.inc({ role: 'asked' });
      }
      this.send(message);
    });
  }

  unchoke(): void {
    if (this.closed || !this.chokedThem) return;
    this.chokedThem = false;
    this.send({ t: Msg.Unchoke });
  }

  /** Drops the connection; with `error`, tells the peer why first. */
  disconnect(error?: { code: string; message: string }): void {
    if (this.closed) return;
    if (error) this.send({ t: Msg.Error, ...error });
    // end() lets the last frames out; destroy() only if the peer never closes its side.
    this.socket.end();
    setTimeout(() => this.socket.destroy(), CLOSE_GRACE_MS).unref();
    this.close(false);
  }

  private close(destroy = true): void {
    if (this.closed) return;
    this.closed = true;
    for (const id of [...this.outgoing.keys()]) this.finish(id, 'error', new PeerUnavailableError(`peer ${this.label} disconnected`));
    for (const ac of this.serving.values()) ac.abort();
    this.host.gate.forget(this);
    if (destroy) this.socket.destroy();
    this.host.closed(this);
  }

  private handle(m: PeerMessage): void {
    if (this.closed) return;
    if (!this.helloSeen && m.t !== Msg.Hello) throw new PeerProtocolError(`message ${m.t} before HELLO`);
    switch (m.t) {
      case Msg.Hello:
        if (this.helloSeen) throw new PeerProtocolError('second HELLO');
        if (m.v !== PROTOCOL_VERSION) {
          // Not a fault: a node of another release. Leave without a ban.
          this.disconnect({ code: PeerErrorCode.Version, message: `this node speaks protocol v${PROTOCOL_VERSION}, not v${m.v}` });
          return;
        }
        this.helloSeen = true;
        for (const key of m.layers) {
          const hex = key.toString('hex');
          if (this.host.layers.has(hex)) this.sendHave(hex);
        }
        return;
      case Msg.Have:
        return this.onHave(m.layer.toString('hex'), m.count, m.bits);
      case Msg.HaveUpdate: {
        const bits = this.remoteHave.get(m.layer.toString('hex'));
        if (!bits) return;
        for (const c of m.chunks) {
          if (c >= bits.size) throw new PeerProtocolError(`HAVE-UPDATE of chunk ${c} of ${bits.size}`);
          bits.set(c);
        }
        this.host.changed();
        return;
      }
      case Msg.Request:
        if (this.serving.has(m.id)) throw new PeerProtocolError(`REQUEST id ${m.id} reused while in progress`);
        void this.serve(m.id, m.layer.toString('hex'), m.first, m.count, m.fetch === true);
        return;
      case Msg.Data:
        return this.onData(m.id, m.index, m.bytes);
      case Msg.Cancel:
        this.serving.get(m.id)?.abort();
        return;
      case Msg.Choke:
        this.choked = true;
        this.host.changed();
        return;
      case Msg.Unchoke:
        this.choked = false;
        this.host.changed();
        return;
      case Msg.Error:
        if (m.id === undefined) {
          this.close();
          return;
        }
        return this.onRequestError(m.id, m.code, m.message);
    }
  }

  private onHave(layer: string, count: number, bits: Buffer): void {
    const shared = this.host.layers.get(layer);
    if (!shared) return;
    if (count !== shared.chunks.count) throw new PeerProtocolError(`HAVE for ${count} chunks of a layer of ${shared.chunks.count}`);
    this.remoteHave.set(layer, ChunkBitset.fromBytes(count, bits));
    if (!this.haveSent.has(layer)) this.sendHave(layer);
    this.host.changed();
  }

  private onData(id: number, index: number, bytes: Buffer): void {
    peerBytes.inc({ direction: 'in' }, bytes.length);
    const o = this.outgoing.get(id);
    // Late DATA of a request we gave up on.
    if (!o) return;
    const at = index - o.first;
    if (at < 0 || at >= o.parts.length) throw new PeerProtocolError(`DATA for chunk ${index}, not in request ${id}`);
    if (bytes.length !== o.table.length(index)) {
      this.host.misbehaved(this, `sent ${bytes.length} bytes for chunk ${index} of ${o.table.length(index)}`);
      return;
    }
    if (o.parts[at]) return;
    o.parts[at] = bytes;
    o.got++;
    clearTimeout(o.timer);
    if (o.got < o.parts.length) {
      o.timer = this.idleTimer(id);
      return;
    }
    const elapsed = performance.now() - o.started;
    this.msPerChunk += EWMA_WEIGHT * (elapsed / o.parts.length - this.msPerChunk);
    this.finish(id, 'ok', Buffer.concat(o.parts as Buffer[]));
  }

  private onRequestError(id: number, code: string, message: string): void {
    const o = this.outgoing.get(id);
    if (!o) return;
    if (code === PeerErrorCode.NotHeld) {
      // Evicted or found corrupt there since its HAVE: do not ask it for these again.
      const bits = this.remoteHave.get(o.layer);
      for (let i = o.first; i < o.first + o.parts.length; i++) bits?.clear(i);
    }
    if (code === PeerErrorCode.Busy) this.choked = true;
    this.finish(id, 'error', new PeerUnavailableError(`peer ${this.label}: ${code}: ${message}`));
  }

  private idleTimer(id: number): NodeJS.Timeout {
    return setTimeout(() => {
      const o = this.outgoing.get(id);
      if (!o) return;
      this.send({ t: Msg.Cancel, id });
      // A stalled peer goes to the back of the queue until it proves fast again.
      this.msPerChunk = Math.max(this.msPerChunk * 2, this.host.requestTimeoutMs / o.parts.length);
      this.stalledUntil = performance.now() + STALL_PENALTY_MS;
      this.finish(id, 'timeout', new PeerUnavailableError(`peer ${this.label} sent nothing for ${this.host.requestTimeoutMs} ms`, { timedOut: true }));
    }, this.host.requestTimeoutMs);
  }

  private finish(id: number, outcome: 'ok' | 'error' | 'timeout', result: Buffer | Error): void {
    const o = this.outgoing.get(id);
    if (!o) return;
    this.outgoing.delete(id);
    clearTimeout(o.timer);
    o.signal.removeEventListener('abort', o.onAbort);
    peerRequestSeconds.observe({ outcome }, (performance.now() - o.started) / 1000);
    if (result instanceof Error) o.reject(result);
    else o.resolve(result);
    this.host.changed();
  }

  /**
   * Answers a REQUEST with one DATA per chunk, from verified local chunks only; with `fetch`,
   * the missing ones are fetched through this node's sources first, holding the upload slot.
   */
  private async serve(id: number, layerKey: string, first: number, count: number, fetch: boolean): Promise<void> {
    const layer = this.host.layers.get(layerKey);
    const notHeld = (what: string): void => void this.send({ t: Msg.Error, id, code: PeerErrorCode.NotHeld, message: `${what} not held` });
    if (!layer || first + count > layer.chunks.count) return notHeld('layer or chunks');
    let missing = false;
    for (let i = first; i < first + count && !missing; i++) missing = !layer.isLocal(i);
    if (missing && !fetch) return notHeld(`chunks ${first}-${first + count - 1}`);
    if (this.serving.size >= MAX_REQUESTS_IN_SERVICE) {
      this.send({ t: Msg.Error, id, code: PeerErrorCode.Busy, message: `${MAX_REQUESTS_IN_SERVICE} requests of yours in service` });
      return;
    }
    if (!this.host.gate.admit(this)) {
      if (!this.chokedThem) {
        this.chokedThem = true;
        this.send({ t: Msg.Choke });
      }
      this.send({ t: Msg.Error, id, code: PeerErrorCode.Busy, message: 'upload slots full' });
      return;
    }
    const ac = new AbortController();
    this.serving.set(id, ac);
    try {
      if (missing) {
        peerFetchThrough.inc({ role: 'served' });
        // A cancelled request frees its slot at once; the fetch goes on and lands in the cache.
        await untilAborted(layer.fetchChunks(first, count, true), ac.signal);
        if (ac.signal.aborted) return;
      }
      for (let i = first; i < first + count; i++) {
        const bytes = await layer.readLocal(i);
        if (ac.signal.aborted) return;
        if (!bytes) return notHeld(`chunk ${i}`);
        await this.host.gate.pace(bytes.length, ac.signal);
        if (ac.signal.aborted) return;
        peerBytes.inc({ direction: 'out' }, bytes.length);
        if (!this.send({ t: Msg.Data, id, index: i, bytes })) await once(this.socket, 'drain', { signal: ac.signal }).catch(() => {});
      }
      this.host.gate.served++;
    } catch (e) {
      this.send({ t: Msg.Error, id, code: PeerErrorCode.NotHeld, message: `${missing ? 'fetching' : 'reading'} chunks: ${(e as Error).message}` });
    } finally {
      this.serving.delete(id);
      if (this.serving.size === 0) this.host.gate.release(this);
    }
  }

  private sendHave(layer: string): void {
    const shared = this.host.layers.get(layer)!;
    this.haveSent.add(layer);
    this.send({ t: Msg.Have, layer: Buffer.from(layer, 'hex'), count: shared.chunks.count, bits: shared.localBits() });
  }

  /** False when the stream wants a pause (wait for 'drain'). */
  private send(m: PeerMessage): boolean {
    if (this.socket.destroyed || this.socket.writableEnded) return true;
    return this.socket.write(encodeFrame(m));
  }

  /** A frame that broke the protocol bans its sender; our own failure handling one only drops the connection. */
  private protocolError(e: unknown): void {
    const message = e instanceof Error ? e.message : String(e);
    if (e instanceof PeerProtocolError) this.host.misbehaved(this, `protocol violation: ${message}`);
    else this.disconnect({ code: PeerErrorCode.Protocol, message: `internal error: ${message}` });
  }
}

/** Settles with `work`, or resolves as soon as `signal` aborts. */
function untilAborted(work: Promise<void>, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  let onAbort: () => void = () => {};
  const aborted = new Promise<void>((resolve) => {
    onAbort = () => resolve();
    signal.addEventListener('abort', onAbort, { once: true });
  });
  return Promise.race([work, aborted]).finally(() => signal.removeEventListener('abort', onAbort));
}
