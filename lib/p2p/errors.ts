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
  constructor(message: string) {
    super('E_PEER_UNAVAILABLE', message);
  }
}
