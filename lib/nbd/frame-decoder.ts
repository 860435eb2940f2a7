import { NbdProtocolError } from './errors.js';
import { Cmd, IHAVEOPT, REQUEST_HEADER_SIZE, REQUEST_MAGIC } from './protocol.js';

/** A transmission-phase request as it came off the wire. */
export interface NbdRequest {
  flags: number;
  type: number;
  /** The opaque 64-bit cookie, kept as two halves so replies echo it without BigInt. */
  cookieHi: number;
  cookieLo: number;
  /** Offsets beyond 2^53 lose precision, but they are out of range for any export anyway. */
  offset: number;
  length: number;
  /** WRITE data; null when the payload exceeded `maxWritePayload` and was skipped. */
  payload: Buffer | null;
}

/** Receives frames in stream order; may switch the decoder's mode from inside a callback. */
export interface FrameSink {
  clientFlags(flags: number): void;
  option(option: number, data: Buffer): void;
  request(request: NbdRequest): void;
}

export type DecoderMode = 'client-flags' | 'option' | 'request' | 'stopped';

export interface DecoderLimits {
  /** Option payloads longer than this are a protocol error (connection dropped). */
  maxOptionLength: number;
  /** WRITE payloads longer than this are consumed without buffering and delivered with payload null. */
  maxWritePayload: number;
}

const OPTION_HEADER_SIZE = 16;
const EMPTY = Buffer.alloc(0);

const enum State {
  Header,
  Payload,
  Discard,
}

/**
 * Incremental decoder for everything the client sends: the 4-byte client flags,
 * option frames, then requests with their WRITE payloads. Bytes may arrive split
 * anywhere; headers straddling chunks are assembled in a small scratch buffer,
 * payloads that lie inside one chunk are passed on as views (no copy).
 */
export class FrameDecoder {
  private mode: DecoderMode = 'client-flags';
  private state = State.Header;
  private readonly scratch = Buffer.alloc(REQUEST_HEADER_SIZE);
  private scratchFilled = 0;
  /** Frame whose payload is being assembled (option or request). */
  private pendingOption = 0;
  private pendingRequest: NbdRequest | null = null;
  private payload: Buffer = EMPTY;
  private payloadFilled = 0;
  private discardLeft = 0;

  constructor(
    private readonly sink: FrameSink,
    private readonly limits: DecoderLimits,
  ) {}

  setMode(mode: DecoderMode): void {
    this.mode = mode;
  }

  /** True when no partial frame is held (e.g. before handing the socket to TLS). */
  get idle(): boolean {
    return this.state === State.Header && this.scratchFilled === 0;
  }

  /** Decodes as many frames as `chunk` completes. Throws NbdProtocolError on garbage. */
  push(chunk: Buffer): void {
    let pos = 0;
    const end = chunk.length;
    while (pos < end && this.mode !== 'stopped') {
      if (this.state === State.Payload) {
        const take = Math.min(this.payload.length - this.payloadFilled, end - pos);
        chunk.copy(this.payload, this.payloadFilled, pos, pos + take);
        this.payloadFilled += take;
        pos += take;
        if (this.payloadFilled === this.payload.length) this.finishPayload(this.payload);
        continue;
      }
      if (this.state === State.Discard) {
        const take = Math.min(this.discardLeft, end - pos);
        this.discardLeft -= take;
        pos += take;
        if (this.discardLeft === 0) this.finishPayload(null);
        continue;
      }
      const need = this.headerSize();
      let header: Buffer;
      let at: number;
      if (this.scratchFilled === 0 && end - pos >= need) {
        header = chunk;
        at = pos;
        pos += need;
      } else {
        const take = Math.min(need - this.scratchFilled, end - pos);
        chunk.copy(this.scratch, this.scratchFilled, pos, pos + take);
        this.scratchFilled += take;
        pos += take;
        if (this.scratchFilled < need) break;
        this.scratchFilled = 0;
        header = this.scratch;
        at = 0;
      }
      const payloadLength = this.decodeHeader(header, at);
      if (payloadLength === 0) continue;
      if (end - pos >= payloadLength) {
        // Whole payload in this chunk: hand out a view.
        const view = chunk.subarray(pos, pos + payloadLength);
        pos += payloadLength;
        this.finishPayload(view);
      } else {
        this.payload = Buffer.allocUnsafe(payloadLength);
        this.payloadFilled = 0;
        this.state = State.Payload;
      }
    }
  }

  private headerSize(): number {
    switch (this.mode) {
      case 'client-flags':
        return 4;
      case 'option':
        return OPTION_HEADER_SIZE;
      default:
        return REQUEST_HEADER_SIZE;
    }
  }

  /** Decodes a complete header; returns the payload length still to collect (0 = delivered or being discarded). */
  private decodeHeader(b: Buffer, at: number): number {
    if (this.mode === 'client-flags') {
      this.sink.clientFlags(b.readUInt32BE(at));
      return 0;
    }
    if (this.mode === 'option') {
      if (b.readBigUInt64BE(at) !== IHAVEOPT) throw new NbdProtocolError('bad option magic');
      const option = b.readUInt32BE(at + 8);
      const length = b.readUInt32BE(at + 12);
      if (length > this.limits.maxOptionLength) {
        throw new NbdProtocolError(`option ${option} length ${length} exceeds ${this.limits.maxOptionLength}`);
      }
      if (length === 0) {
        this.sink.option(option, EMPTY);
        return 0;
      }
      this.pendingOption = option;
      return length;
    }
    if (b.readUInt32BE(at) !== REQUEST_MAGIC) throw new NbdProtocolError('bad request magic');
    const request: NbdRequest = {
      flags: b.readUInt16BE(at + 4),
      type: b.readUInt16BE(at + 6),
      cookieHi: b.readUInt32BE(at + 8),
      cookieLo: b.readUInt32BE(at + 12),
      offset: b.readUInt32BE(at + 16) * 0x1_0000_0000 + b.readUInt32BE(at + 20),
      length: b.readUInt32BE(at + 24),
      payload: null,
    };
    if (request.type !== Cmd.WRITE || request.length === 0) {
      if (request.type === Cmd.WRITE) request.payload = EMPTY;
      this.sink.request(request);
      return 0;
    }
    this.pendingRequest = request;
    if (request.length > this.limits.maxWritePayload) {
      this.discardLeft = request.length;
      this.state = State.Discard;
      return 0;
    }
    return request.length;
  }

  private finishPayload(payload: Buffer | null): void {
    this.state = State.Header;
    this.payload = EMPTY;
    if (this.mode === 'option') {
      this.sink.option(this.pendingOption, payload ?? EMPTY);
      return;
    }
    const request = this.pendingRequest!;
    this.pendingRequest = null;
    request.payload = payload;
    this.sink.request(request);
  }
}
