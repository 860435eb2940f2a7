import type { BlockDevice, BlockStatusExtent } from '../device/block-device.js';
import { errnoOf } from './errno.js';
import type { NbdRequest } from './frame-decoder.js';
import { MAX_PAYLOAD } from './limits.js';
import type { NbdLogger } from './logger.js';
import type { Session } from './negotiation.js';
import {
  CMD_FLAG_DF,
  CMD_FLAG_FAST_ZERO,
  CMD_FLAG_FUA,
  CMD_FLAG_NO_HOLE,
  CMD_FLAG_REQ_ONE,
  Cmd,
  Errno,
  MAX_STATUS_DESCRIPTORS,
  STATE_HOLE,
  STATE_ZERO,
} from './protocol.js';
import { ReplyBuffers } from './reply-buffers.js';
import * as frames from './server-frames.js';

/** How the transmission phase talks back to its connection. */
export interface TransmissionHost {
  /** `written(frame)` runs once the socket is done with the frame (written, or dropped on error). */
  send(frame: Buffer, written?: (frame: Buffer) => void): void;
  /** A reply has been queued; `cost` is what `costOf` charged for the request. */
  settled(cost: number): void;
  disconnect(): void;
}

/** Command flags each command accepts (anything else is EINVAL); FUA is valid on every command. */
const ALLOWED_FLAGS: Record<number, number> = {
  [Cmd.READ]: CMD_FLAG_FUA | CMD_FLAG_DF,
  [Cmd.WRITE]: CMD_FLAG_FUA,
  [Cmd.FLUSH]: CMD_FLAG_FUA,
  [Cmd.TRIM]: CMD_FLAG_FUA,
  [Cmd.CACHE]: CMD_FLAG_FUA,
  [Cmd.WRITE_ZEROES]: CMD_FLAG_FUA | CMD_FLAG_NO_HOLE | CMD_FLAG_FAST_ZERO,
  [Cmd.BLOCK_STATUS]: CMD_FLAG_FUA | CMD_FLAG_REQ_ONE,
};

/** Bytes a request holds while in flight: its WRITE payload or its READ reply. */
export function costOf(request: NbdRequest): number {
  if (request.type === Cmd.READ) return request.length <= MAX_PAYLOAD ? request.length : 0;
  return request.payload?.length ?? 0;
}

/** Shared by every connection of the process: reply slabs, and up to 32 MiB of large reply buffers kept for reuse. */
const replies = new ReplyBuffers(32 * 1024 * 1024);
const reuseReply = (reply: Buffer): void => replies.reuse(reply);

/**
 * Serves the requests of one connection against its export's device. Requests
 * run concurrently; each reply is queued as soon as its device call settles.
 */
export class Transmission {
  private readonly device: BlockDevice;
  private readonly structured: boolean;
  private readonly contextId: number;
  /** Requests handed to the device and not yet answered. */
  inFlight = 0;

  constructor(
    session: Session,
    private readonly host: TransmissionHost,
    private readonly logger: NbdLogger,
    private readonly label: string,
  ) {
    this.device = session.export.device;
    this.structured = session.structured;
    this.contextId = session.baseAllocationId;
  }

  request(r: NbdRequest): void {
    if (r.type === Cmd.DISC) {
      this.host.disconnect();
      return;
    }
    const problem = this.validate(r);
    if (problem !== 0) {
      this.replyError(r, problem, problemMessage(problem, r));
      return;
    }
    this.inFlight++;
    try {
      this.start(r);
    } catch (err) {
      // A device that throws instead of rejecting still gets an answer, not a dropped connection.
      this.failed(r, err);
    }
  }

  private start(r: NbdRequest): void {
    const device = this.device;
    const fua = (r.flags & CMD_FLAG_FUA) !== 0;
    let work: Promise<void>;
    switch (r.type) {
      case Cmd.READ:
        if (r.length === 0) {
          this.inFlight--;
          this.replyOk(r);
          return;
        }
        if (device.readInto) this.readIntoReply(r);
        else
          device.read(r.offset, r.length).then(
            (data) => this.readDone(r, data),
            (err) => this.failed(r, err),
          );
        return;
      case Cmd.WRITE:
        work = device.write(r.offset, r.payload!, fua);
        break;
      case Cmd.FLUSH:
        work = device.flush();
        break;
      case Cmd.TRIM:
        work = device.trim(r.offset, r.length, fua);
        break;
      case Cmd.CACHE:
        work = device.cache(r.offset, r.length);
        break;
      case Cmd.WRITE_ZEROES:
        work = device.writeZeroes(r.offset, r.length, {
          noHole: (r.flags & CMD_FLAG_NO_HOLE) !== 0,
          fastZero: (r.flags & CMD_FLAG_FAST_ZERO) !== 0,
          fua,
        });
        break;
      default:
        device.blockStatus(r.offset, r.length).then(
          (extents) => this.blockStatusDone(r, extents),
          (err) => this.failed(r, err),
        );
        return;
    }
    work.then(
      () => {
        this.inFlight--;
        this.replyOk(r);
      },
      (err) => this.failed(r, err),
    );
  }

  /** 0 when the request may go to the device, else the NBD errno to answer with. */
  private validate(r: NbdRequest): number {
    const allowed = ALLOWED_FLAGS[r.type];
    if (allowed === undefined) return Errno.EINVAL;
    if ((r.flags & ~allowed) !== 0) return Errno.EINVAL;
    if (r.type === Cmd.FLUSH) return 0;
    if ((r.flags & CMD_FLAG_DF) !== 0 && !this.structured) return Errno.EINVAL;
    const writes = r.type === Cmd.WRITE || r.type === Cmd.WRITE_ZEROES || r.type === Cmd.TRIM;
    if (writes && this.device.readOnly) return Errno.EPERM;
    if (r.type === Cmd.WRITE && r.payload === null) return Errno.EOVERFLOW;
    if (r.type === Cmd.READ && r.length > MAX_PAYLOAD) return Errno.EOVERFLOW;
    if (r.offset + r.length > this.device.size) {
      return r.type === Cmd.WRITE || r.type === Cmd.WRITE_ZEROES ? Errno.ENOSPC : Errno.EINVAL;
    }
    if (r.type === Cmd.BLOCK_STATUS && (this.contextId === 0 || r.length === 0)) return Errno.EINVAL;
    return 0;
  }

  /** One buffer holds the reply header and the data read after it: one allocation, one socket write. */
  private readIntoReply(r: NbdRequest): void {
    const header = this.readReplyHeader(r, r.length);
    const reply = replies.take(header.length + r.length);
    header.copy(reply, 0);
    this.device.readInto!(r.offset, r.length, reply, header.length).then(
      () => {
        this.inFlight--;
        this.host.send(reply, reuseReply);
        this.host.settled(costOf(r));
      },
      (err) => this.failed(r, err),
    );
  }

  private readDone(r: NbdRequest, data: Buffer): void {
    this.inFlight--;
    if (data?.length !== r.length) {
      this.failed(r, new Error(`device returned ${data?.length} bytes for a ${r.length}-byte read`), false);
      return;
    }
    this.host.send(this.readReplyHeader(r, data.length));
    this.host.send(data);
    this.host.settled(costOf(r));
  }

  private readReplyHeader(r: NbdRequest, dataLength: number): Buffer {
    return this.structured
      ? frames.offsetDataHeader(r.cookieHi, r.cookieLo, r.offset, dataLength)
      : frames.simpleReply(0, r.cookieHi, r.cookieLo);
  }

  private blockStatusDone(r: NbdRequest, extents: BlockStatusExtent[]): void {
    this.inFlight--;
    const limit = (r.flags & CMD_FLAG_REQ_ONE) !== 0 ? 1 : MAX_STATUS_DESCRIPTORS;
    const lengths: number[] = [];
    const flags: number[] = [];
    let covered = 0;
    for (const e of Array.isArray(extents) ? extents : []) {
      if (covered >= r.length) break;
      if (!(e.length > 0)) continue;
      const length = Math.min(e.length, r.length - covered);
      const status = (e.hole ? STATE_HOLE : 0) | (e.zero ? STATE_ZERO : 0);
      covered += length;
      const last = lengths.length - 1;
      if (last >= 0 && flags[last] === status) lengths[last] += length;
      else if (lengths.length < limit) {
        lengths.push(length);
        flags.push(status);
      } else break;
    }
    // A device answering nothing gets the always-safe "allocated, unknown contents".
    if (lengths.length === 0) {
      lengths.push(r.length);
      flags.push(0);
    }
    this.host.send(frames.blockStatusChunk(r.cookieHi, r.cookieLo, this.contextId, lengths, flags));
    this.host.settled(0);
  }

  private failed(r: NbdRequest, err: unknown, counted = true): void {
    if (counted) this.inFlight--;
    const errno = errnoOf(err);
    const message = err instanceof Error ? err.message : String(err);
    // ENOTSUP is the expected answer to FAST_ZERO, not worth a warning.
    if (errno !== Errno.ENOTSUP) this.logger.warn(`${this.label}: ${commandName(r.type)} ${r.offset}+${r.length} failed: ${message}`);
    this.replyError(r, errno, message.slice(0, 256));
  }

  private replyOk(r: NbdRequest): void {
    this.host.send(
      this.structured && r.type === Cmd.READ
        ? frames.noneChunk(r.cookieHi, r.cookieLo)
        : frames.simpleReply(0, r.cookieHi, r.cookieLo),
    );
    this.host.settled(costOf(r));
  }

  private replyError(r: NbdRequest, errno: number, message: string): void {
    this.host.send(
      this.structured
        ? frames.errorChunk(r.cookieHi, r.cookieLo, errno, message)
        : frames.simpleReply(errno, r.cookieHi, r.cookieLo),
    );
    this.host.settled(costOf(r));
  }
}

function commandName(type: number): string {
  return ['READ', 'WRITE', 'DISC', 'FLUSH', 'TRIM', 'CACHE', 'WRITE_ZEROES', 'BLOCK_STATUS'][type] ?? `command ${type}`;
}

function problemMessage(errno: number, r: NbdRequest): string {
  switch (errno) {
    case Errno.EPERM:
      return 'export is read-only';
    case Errno.EOVERFLOW:
      return `length ${r.length} exceeds maximum payload ${MAX_PAYLOAD}`;
    case Errno.ENOSPC:
    case Errno.EINVAL:
      if (ALLOWED_FLAGS[r.type] === undefined) return `unknown ${commandName(r.type)}`;
      return `invalid ${commandName(r.type)} at ${r.offset}+${r.length} (flags 0x${r.flags.toString(16)})`;
    default:
      return 'request failed';
  }
}
