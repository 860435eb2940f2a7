import { Packr } from 'msgpackr';
import { PeerProtocolError } from './errors.js';
import { FRAME_HEADER_SIZE, MAX_FRAME_BODY, MAX_HELLO_LAYERS, MAX_REQUEST_CHUNKS, Msg } from './protocol.js';

/**
 * The peer wire messages (protocol v2, constants in protocol.ts). `layer` is always the
 * 32-byte layer key (`layerKey(digest)`), never the digest: a peer learns of a layer only
 * when it already knows it. Chunk indexes are the layer's chunk table indexes.
 */
export type PeerMessage =
  /** First frame from each side: its version and the layers it serves or wants. */
  | { t: Msg.Hello; v: number; layers: Buffer[] }
  /** Every chunk the sender holds verified of one layer: bit i (LSB first in byte i>>3) = chunk i. */
  | { t: Msg.Have; layer: Buffer; count: number; bits: Buffer }
  /** Chunks the sender has verified since, batched. */
  | { t: Msg.HaveUpdate; layer: Buffer; chunks: number[] }
  /**
   * Ask for chunks [first, first+count) of a layer; answered with one DATA per chunk, or one
   * ERROR. With `fetch`, chunks the receiver does not hold are fetched by it first, through its
   * own sources (it is the chunks' owner: see OWNER_GROUP_BYTES); without, they are NOT-HELD.
   */
  | { t: Msg.Request; id: number; layer: Buffer; first: number; count: number; fetch?: true }
  | { t: Msg.Data; id: number; index: number; bytes: Buffer }
  /** The requester no longer wants the rest of a request. */
  | { t: Msg.Cancel; id: number }
  /** Do not send requests until UNCHOKE: the sender's uploads are at their limit. */
  | { t: Msg.Choke }
  | { t: Msg.Unchoke }
  /** For a request (`id`), or for the connection (no `id`; the sender then closes). */
  | { t: Msg.Error; id?: number; code: string; message: string };

const EMPTY = Buffer.alloc(0);
const packr = new Packr({ useRecords: false, mapsAsObjects: true });

/** One frame: the u32 big-endian body length, then the msgpack body. */
export function encodeFrame(message: PeerMessage): Buffer {
  const body = packr.pack(message);
  const frame = Buffer.allocUnsafe(FRAME_HEADER_SIZE + body.length);
  frame.writeUInt32BE(body.length, 0);
  body.copy(frame, FRAME_HEADER_SIZE);
  return frame;
}

/** Checks a decoded body field by field; anything unexpected is a protocol error. */
export function decodeMessage(body: Buffer): PeerMessage {
  let m: unknown;
  try {
    m = packr.unpack(body);
  } catch (e) {
    throw new PeerProtocolError(`undecodable frame: ${(e as Error).message}`);
  }
  if (typeof m !== 'object' || m === null || Array.isArray(m)) throw new PeerProtocolError('frame is not a map');
  const o = m as Record<string, unknown>;
  switch (o.t) {
    case Msg.Hello: {
      const layers = o.layers;
      if (!Array.isArray(layers) || layers.length > MAX_HELLO_LAYERS) throw new PeerProtocolError('HELLO layers is not a list of at most 4096 keys');
      return { t: Msg.Hello, v: uint(o.v, 'HELLO version'), layers: layers.map((k) => key(k)) };
    }
    case Msg.Have: {
      const count = uint(o.count, 'HAVE count');
      const bits = bytes(o.bits, 'HAVE bits');
      if (bits.length !== Math.ceil(count / 8)) throw new PeerProtocolError(`HAVE bitfield of ${bits.length} bytes for ${count} chunks`);
      return { t: Msg.Have, layer: key(o.layer), count, bits };
    }
    case Msg.HaveUpdate: {
      if (!Array.isArray(o.chunks)) throw new PeerProtocolError('HAVE-UPDATE chunks is not a list');
      return { t: Msg.HaveUpdate, layer: key(o.layer), chunks: o.chunks.map((c) => uint(c, 'HAVE-UPDATE chunk')) };
    }
    case Msg.Request: {
      const count = uint(o.count, 'REQUEST count');
      if (count < 1 || count > MAX_REQUEST_CHUNKS) throw new PeerProtocolError(`REQUEST of ${count} chunks (1-${MAX_REQUEST_CHUNKS})`);
      const request: PeerMessage = { t: Msg.Request, id: uint(o.id, 'REQUEST id'), layer: key(o.layer), first: uint(o.first, 'REQUEST first'), count };
      if (o.fetch !== undefined && o.fetch !== true) throw new PeerProtocolError('REQUEST fetch is not true');
      if (o.fetch) request.fetch = true;
      return request;
    }
    case Msg.Data:
      return { t: Msg.Data, id: uint(o.id, 'DATA id'), index: uint(o.index, 'DATA index'), bytes: bytes(o.bytes, 'DATA bytes') };
    case Msg.Cancel:
      return { t: Msg.Cancel, id: uint(o.id, 'CANCEL id') };
    case Msg.Choke:
      return { t: Msg.Choke };
    case Msg.Unchoke:
      return { t: Msg.Unchoke };
    case Msg.Error: {
      if (typeof o.code !== 'string' || typeof o.message !== 'string') throw new PeerProtocolError('ERROR without code and message');
      const error: PeerMessage = { t: Msg.Error, code: o.code.slice(0, 64), message: o.message.slice(0, 512) };
      if (o.id !== undefined) error.id = uint(o.id, 'ERROR id');
      return error;
    }
    default:
      throw new PeerProtocolError(`unknown message type ${String(o.t)}`);
  }
}

function uint(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new PeerProtocolError(`${what} is not a non-negative integer`);
  return v;
}

function bytes(v: unknown, what: string): Buffer {
  if (!(v instanceof Uint8Array)) throw new PeerProtocolError(`${what} is not binary`);
  return Buffer.isBuffer(v) ? v : Buffer.from(v.buffer, v.byteOffset, v.byteLength);
}

function key(v: unknown): Buffer {
  const b = bytes(v, 'layer key');
  if (b.length !== 32) throw new PeerProtocolError(`layer key of ${b.length} bytes`);
  return b;
}

/**
 * Splits a byte stream into messages; bytes may arrive split anywhere. A body longer
 * than MAX_FRAME_BODY is refused before it is buffered.
 */
export class FrameDecoder {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** Body length of the frame being assembled, once its header is in. */
  private need = -1;

  constructor(private readonly onMessage: (message: PeerMessage) => void) {}

  /** True between frames: nothing partial is held. */
  get idle(): boolean {
    return this.pendingBytes === 0;
  }

  /** Feeds bytes; calls `onMessage` for each whole frame. Throws PeerProtocolError on a bad one. */
  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    for (;;) {
      if (this.need < 0) {
        if (this.pendingBytes < FRAME_HEADER_SIZE) return;
        const length = this.take(FRAME_HEADER_SIZE).readUInt32BE(0);
        if (length > MAX_FRAME_BODY) throw new PeerProtocolError(`frame of ${length} bytes (limit ${MAX_FRAME_BODY})`);
        this.need = length;
      }
      if (this.pendingBytes < this.need) return;
      const body = this.take(this.need);
      this.need = -1;
      this.onMessage(decodeMessage(body));
    }
  }

  /** The first n pending bytes (n ≤ pendingBytes): a view when they lie in one chunk. */
  private take(n: number): Buffer {
    if (n === 0) return EMPTY;
    const first = this.pending[0]!;
    let out: Buffer;
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.pending.shift();
      else this.pending[0] = first.subarray(n);
    } else {
      out = Buffer.allocUnsafe(n);
      let filled = 0;
      while (filled < n) {
        const head = this.pending[0]!;
        const k = Math.min(head.length, n - filled);
        head.copy(out, filled, 0, k);
        filled += k;
        if (k === head.length) this.pending.shift();
        else this.pending[0] = head.subarray(k);
      }
    }
    this.pendingBytes -= n;
    return out;
  }
}
