import type { ExportRegistry, NbdExport } from './export-registry.js';
import { MAX_PAYLOAD, MIN_BLOCK_SIZE, PREFERRED_BLOCK_SIZE } from './limits.js';
import { decodeInfoRequest, decodeMetaContextRequest } from './option-payloads.js';
import {
  CONTEXT_BASE_ALLOCATION,
  FLAG_CAN_MULTI_CONN,
  FLAG_C_FIXED_NEWSTYLE,
  FLAG_C_NO_ZEROES,
  FLAG_HAS_FLAGS,
  FLAG_READ_ONLY,
  FLAG_SEND_CACHE,
  FLAG_SEND_DF,
  FLAG_SEND_FAST_ZERO,
  FLAG_SEND_FLUSH,
  FLAG_SEND_FUA,
  FLAG_SEND_TRIM,
  FLAG_SEND_WRITE_ZEROES,
  INFO_DESCRIPTION,
  INFO_NAME,
  MAX_STRING,
  Opt,
  REP_ACK,
  REP_ERR_INVALID,
  REP_ERR_POLICY,
  REP_ERR_SHUTDOWN,
  REP_ERR_TLS_REQD,
  REP_ERR_UNKNOWN,
  REP_ERR_UNSUP,
  REP_INFO,
  REP_META_CONTEXT,
  REP_SERVER,
} from './protocol.js';
import * as frames from './server-frames.js';

/** The one metadata context id we hand out. */
const BASE_ALLOCATION_ID = 1;

/** What the connection must do after an option has been answered. */
export type OptionOutcome =
  | { kind: 'continue' }
  | { kind: 'starttls' }
  | { kind: 'close'; reason: string }
  | { kind: 'transmission'; session: Session };

/** Everything the transmission phase needs from the handshake. */
export interface Session {
  export: NbdExport;
  flags: number;
  structured: boolean;
  /** Id of base:allocation when selected for this export, else 0 (BLOCK_STATUS is refused). */
  baseAllocationId: number;
}

export interface NegotiationPolicy {
  exports: ExportRegistry;
  /** 'none': STARTTLS refused; 'optional': clients may upgrade; 'required': every option but STARTTLS/ABORT needs TLS first. */
  tls: 'none' | 'optional' | 'required';
  shuttingDown(): boolean;
}

/**
 * Option haggling state for one connection (fixed newstyle). Answers each
 * option through `send` and tells the connection what happens next.
 */
export class Negotiation {
  private noZeroes = false;
  private structured = false;
  private tlsActive = false;
  /** Export for which base:allocation was last selected with SET_META_CONTEXT. */
  private metaContextExport: NbdExport | null = null;

  constructor(
    private readonly policy: NegotiationPolicy,
    private readonly send: (frame: Buffer) => void,
  ) {}

  /** Returns false when the flags are unacceptable (the spec says close). */
  clientFlags(flags: number): boolean {
    this.noZeroes = (flags & FLAG_C_NO_ZEROES) !== 0;
    return (flags & ~(FLAG_C_FIXED_NEWSTYLE | FLAG_C_NO_ZEROES)) === 0;
  }

  /** Called once the TLS handshake has completed; earlier negotiation state must not survive. */
  tlsStarted(): void {
    this.tlsActive = true;
    this.structured = false;
    this.metaContextExport = null;
  }

  option(option: number, data: Buffer): OptionOutcome {
    if (option === Opt.ABORT) {
      this.reply(option, REP_ACK);
      return { kind: 'close', reason: 'client aborted' };
    }
    if (this.policy.tls === 'required' && !this.tlsActive && option !== Opt.STARTTLS) {
      if (option === Opt.EXPORT_NAME) return { kind: 'close', reason: 'EXPORT_NAME without TLS' };
      return this.error(option, REP_ERR_TLS_REQD, 'TLS is required');
    }
    if (this.policy.shuttingDown()) {
      if (option === Opt.EXPORT_NAME) return { kind: 'close', reason: 'server shutting down' };
      return this.error(option, REP_ERR_SHUTDOWN, 'server is shutting down');
    }
    switch (option) {
      case Opt.EXPORT_NAME:
        return this.exportName(data);
      case Opt.LIST:
        return this.list(data);
      case Opt.STARTTLS:
        return this.startTls(data);
      case Opt.INFO:
      case Opt.GO:
        return this.infoOrGo(option, data);
      case Opt.STRUCTURED_REPLY:
        if (data.length !== 0) return this.error(option, REP_ERR_INVALID, 'unexpected payload');
        this.structured = true;
        this.reply(option, REP_ACK);
        return CONTINUE;
      case Opt.LIST_META_CONTEXT:
      case Opt.SET_META_CONTEXT:
        return this.metaContext(option, data);
      default:
        return this.error(option, REP_ERR_UNSUP, `option ${option} not supported`);
    }
  }

  private exportName(data: Buffer): OptionOutcome {
    const name = data.toString('utf8');
    const entry = this.policy.exports.find(name);
    if (!entry) return { kind: 'close', reason: `EXPORT_NAME for unknown export '${name}'` };
    const session = this.session(entry);
    this.send(frames.exportNameReply(entry.device.size, session.flags, this.noZeroes));
    return { kind: 'transmission', session };
  }

  private list(data: Buffer): OptionOutcome {
    if (data.length !== 0) return this.error(Opt.LIST, REP_ERR_INVALID, 'unexpected payload');
    for (const entry of this.policy.exports.list()) {
      this.reply(Opt.LIST, REP_SERVER, frames.serverEntry(entry.name, entry.description ?? ''));
    }
    this.reply(Opt.LIST, REP_ACK);
    return CONTINUE;
  }

  private startTls(data: Buffer): OptionOutcome {
    if (this.policy.tls === 'none') return this.error(Opt.STARTTLS, REP_ERR_POLICY, 'TLS not configured');
    if (this.tlsActive) return this.error(Opt.STARTTLS, REP_ERR_INVALID, 'TLS already active');
    if (data.length !== 0) return this.error(Opt.STARTTLS, REP_ERR_INVALID, 'unexpected payload');
    this.reply(Opt.STARTTLS, REP_ACK);
    return { kind: 'starttls' };
  }

  private infoOrGo(option: number, data: Buffer): OptionOutcome {
    const request = decodeInfoRequest(data);
    if (!request) return this.error(option, REP_ERR_INVALID, 'malformed request');
    const entry = this.policy.exports.find(request.name);
    if (!entry) return this.error(option, REP_ERR_UNKNOWN, `no export '${truncate(request.name)}'`);
    const session = this.session(entry);
    this.reply(option, REP_INFO, frames.infoExport(entry.device.size, session.flags));
    this.reply(option, REP_INFO, frames.infoBlockSize(MIN_BLOCK_SIZE, PREFERRED_BLOCK_SIZE, MAX_PAYLOAD));
    if (request.infos.includes(INFO_NAME)) this.reply(option, REP_INFO, frames.infoString(INFO_NAME, entry.name));
    if (request.infos.includes(INFO_DESCRIPTION) && entry.description) {
      this.reply(option, REP_INFO, frames.infoString(INFO_DESCRIPTION, truncate(entry.description)));
    }
    this.reply(option, REP_ACK);
    return option === Opt.GO ? { kind: 'transmission', session } : CONTINUE;
  }

  private metaContext(option: number, data: Buffer): OptionOutcome {
    const setting = option === Opt.SET_META_CONTEXT;
    // SET replaces the selection even when it fails.
    if (setting) this.metaContextExport = null;
    if (setting && !this.structured) return this.error(option, REP_ERR_INVALID, 'structured replies not negotiated');
    const request = decodeMetaContextRequest(data);
    if (!request) return this.error(option, REP_ERR_INVALID, 'malformed request');
    const entry = this.policy.exports.find(request.name);
    if (!entry) return this.error(option, REP_ERR_UNKNOWN, `no export '${truncate(request.name)}'`);
    const matches = setting
      ? request.queries.includes(CONTEXT_BASE_ALLOCATION)
      : request.queries.length === 0 || request.queries.some((q) => q === 'base:' || q === CONTEXT_BASE_ALLOCATION);
    if (matches) {
      // LIST replies carry a reserved id of 0.
      this.reply(option, REP_META_CONTEXT, frames.metaContext(setting ? BASE_ALLOCATION_ID : 0, CONTEXT_BASE_ALLOCATION));
      if (setting) this.metaContextExport = entry;
    }
    this.reply(option, REP_ACK);
    return CONTINUE;
  }

  private session(entry: NbdExport): Session {
    const device = entry.device;
    let flags = FLAG_HAS_FLAGS | FLAG_SEND_FLUSH | FLAG_SEND_CACHE;
    if (device.readOnly) flags |= FLAG_READ_ONLY;
    else flags |= FLAG_SEND_FUA | FLAG_SEND_TRIM | FLAG_SEND_WRITE_ZEROES | FLAG_SEND_FAST_ZERO;
    if (device.canMultiConn) flags |= FLAG_CAN_MULTI_CONN;
    // Reads are always answered with one content chunk, so DF costs nothing.
    if (this.structured) flags |= FLAG_SEND_DF;
    return {
      export: entry,
      flags,
      structured: this.structured,
      baseAllocationId: this.metaContextExport === entry ? BASE_ALLOCATION_ID : 0,
    };
  }

  private reply(option: number, type: number, data?: Buffer): void {
    this.send(frames.optionReply(option, type, data));
  }

  private error(option: number, type: number, message: string): OptionOutcome {
    this.reply(option, type, Buffer.from(message, 'utf8'));
    return CONTINUE;
  }
}

const CONTINUE: OptionOutcome = { kind: 'continue' };

function truncate(text: string): string {
  return text.length > MAX_STRING / 4 ? `${text.slice(0, MAX_STRING / 4)}…` : text;
}
