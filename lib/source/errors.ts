import { LazybdError } from '../errors.js';

/**
 * No source delivered a verified chunk within the I/O timeout. Surfaces to NBD clients as
 * EIO; the message names the chunk, every source tried and why each failed.
 */
export class ChunkUnavailableError extends LazybdError {
  readonly errno = 'EIO';
  constructor(message: string) {
    super('E_CHUNK_UNAVAILABLE', message, { exitStatus: 4 });
  }
}

/** A source answered a range request with the wrong number of bytes. Worth a retry. */
export class SourceResponseError extends LazybdError {
  readonly retryable = true;
  constructor(message: string) {
    super('E_SOURCE_SHORT_RESPONSE', message);
  }
}

/** A trace that is not a valid trace-v1 document (format-spec/trace-v1.md). */
export class TraceFormatError extends LazybdError {
  constructor(message: string) {
    super('E_TRACE_FORMAT', message, { exitStatus: 3 });
  }
}
