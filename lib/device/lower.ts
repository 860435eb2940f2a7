import type { BlockStatusExtent } from './block-device.js';

/**
 * The read-only image a LayeredDevice sits on (the merged layers). Offsets and
 * lengths are bytes within [0, size); callers never ask past the end.
 */
export interface Lower {
  readonly size: number;
  /** Exactly `length` bytes; holes and zero extents read as zeroes. */
  read(offset: number, length: number): Promise<Buffer>;
  /** Like `read`, into target[at, at+length); may throw instead of rejecting on a bad range. */
  readInto?(offset: number, length: number, target: Buffer, at: number): Promise<void>;
  /** Extents covering [offset, offset+length) in order; may stop early. */
  status(offset: number, length: number): Promise<BlockStatusExtent[]> | BlockStatusExtent[];
  /** Warm the range (fetch remote chunks) without returning data. */
  cache?(offset: number, length: number): Promise<void>;
}
