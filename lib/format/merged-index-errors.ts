import { LazybdError } from '../errors.js';

export type MergedIndexErrorCode =
  /** A layer's extents are not sorted, overlap, or have a negative offset or length. */
  | 'E_INDEX_EXTENT_ORDER'
  /** The virtual size is not a non-negative safe integer. */
  | 'E_INDEX_BAD_SIZE'
  /** A lookup or resolve reaches outside [0, virtualSize). */
  | 'E_INDEX_OUT_OF_RANGE';

/** Misuse of the merged index: bad input to `build`, or a query outside the image. */
export class MergedIndexError extends LazybdError {
  constructor(code: MergedIndexErrorCode, message: string) {
    super(code, message);
  }
}
