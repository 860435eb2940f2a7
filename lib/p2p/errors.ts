import { LazybdError } from '../errors.js';

/** A peer sent something that is not protocol v1: the connection is dropped. */
export class PeerProtocolError extends LazybdError {
  constructor(message: string, code = 'E_P2P_PROTOCOL') {
    super(code, message);
  }
}

/**
 * No peer could serve a range, or the one asked failed or went quiet. Never retryable:
 * the chain moves on to the next source (supernode, registry) at once.
 */
export class PeerUnavailableError extends LazybdError {
  readonly retryable = false;
  /** The peer went quiet (its time is spent): no other peer is tried for this range. */
  readonly timedOut: boolean;
  constructor(message: string, options: { timedOut?: boolean } = {}) {
    super('E_PEER_UNAVAILABLE', message);
    this.timedOut = options.timedOut ?? false;
  }
}
