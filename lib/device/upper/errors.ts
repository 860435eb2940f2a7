import { LazybdError } from '../../errors.js';

/** The upper directory cannot be used as asked. `code` says why. */
export class UpperError extends LazybdError {
  constructor(code: UpperErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, { ...options, exitStatus: EXIT_STATUS[code] });
  }
}

/** The CLI's exit-status classes (README): 2 the caller can fix it, 3 malformed data, 1 otherwise. */
const EXIT_STATUS: Record<UpperErrorCode, number> = {
  E_UPPER_SIZE_MISMATCH: 2,
  E_UPPER_LOCKED: 2,
  E_UPPER_CORRUPT: 3,
  E_UPPER_OUT_OF_RANGE: 1,
  E_UPPER_JOURNAL_FAILED: 1,
  E_UPPER_CLOSED: 1,
};

export type UpperErrorCode =
  /** The directory holds an upper made for another virtual size. */
  | 'E_UPPER_SIZE_MISMATCH'
  /** The journal header or the data file is not what this format writes. */
  | 'E_UPPER_CORRUPT'
  /** An operation reaches past the virtual size. */
  | 'E_UPPER_OUT_OF_RANGE'
  /** A journal write failed earlier; the journal may have a gap, so nothing more is appended until reopened. */
  | 'E_UPPER_JOURNAL_FAILED'
  /** Another live process has the upper open. */
  | 'E_UPPER_LOCKED'
  /** The upper was used after close(). */
  | 'E_UPPER_CLOSED';
