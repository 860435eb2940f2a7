/**
 * The seam between a front end (lib/nbd) and an image (lib/device).
 * Offsets and lengths are bytes; callers (the NBD server) have already checked
 * that [offset, offset+length) lies within `size`.
 */
export interface BlockStatusExtent {
  length: number;
  /** Not allocated: reads return zeroes and the range costs no storage. */
  hole: boolean;
  /** Reads are guaranteed to return zeroes. */
  zero: boolean;
}

export interface WriteZeroesOptions {
  /** The client asked that the range be allocated (NBD_CMD_FLAG_NO_HOLE). */
  noHole: boolean;
  /** Fail with NotFastError instead of writing zeroes slowly (NBD_CMD_FLAG_FAST_ZERO). */
  fastZero: boolean;
  fua: boolean;
}

export interface BlockDevice {
  readonly size: number;
  readonly readOnly: boolean;
  /** Safe to serve from several connections at once with consistent flush semantics. */
  readonly canMultiConn: boolean;
  read(offset: number, length: number): Promise<Buffer>;
  /**
   * Like `read`, but fills target[at, at+length): lets a front end read straight into
   * its reply buffer. May throw instead of rejecting on a range outside the device.
   */
  readInto?(offset: number, length: number, target: Buffer, at: number): Promise<void>;
  write(offset: number, data: Buffer, fua: boolean): Promise<void>;
  flush(): Promise<void>;
  trim(offset: number, length: number, fua: boolean): Promise<void>;
  writeZeroes(offset: number, length: number, options: WriteZeroesOptions): Promise<void>;
  /** Warm the range (fetch remote chunks) without returning data. */
  cache(offset: number, length: number): Promise<void>;
  /** Extents covering exactly [offset, offset+length), in order; may stop early (NBD allows a shorter answer). */
  blockStatus(offset: number, length: number): Promise<BlockStatusExtent[]>;
  close(): Promise<void>;
}
