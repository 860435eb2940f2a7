import { LazybdError } from '../errors.js';

/** The peer broke the protocol badly enough that the connection is dropped (bad magic, absurd length, ...). */
export class NbdProtocolError extends LazybdError {
  constructor(message: string) {
    super('NBD_PROTOCOL', message);
  }
}

/** The server could not start listening, or was used after close(). */
export class NbdServerError extends LazybdError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('NBD_SERVER', message, options);
  }
}
