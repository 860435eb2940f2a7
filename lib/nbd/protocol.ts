/**
 * Wire constants of the NBD protocol (NetworkBlockDevice/nbd doc/proto.md).
 * Names follow the spec without the NBD_ prefix; nothing else in lib/nbd spells a number.
 */

// Handshake
export const NBDMAGIC = 0x4e42444d41474943n;
export const IHAVEOPT = 0x49484156454f5054n;
export const OPTION_REPLY_MAGIC = 0x3e889045565a9n;

export const FLAG_FIXED_NEWSTYLE = 1 << 0;
export const FLAG_NO_ZEROES = 1 << 1;
export const FLAG_C_FIXED_NEWSTYLE = 1 << 0;
export const FLAG_C_NO_ZEROES = 1 << 1;

export const enum Opt {
  EXPORT_NAME = 1,
  ABORT = 2,
  LIST = 3,
  STARTTLS = 5,
  INFO = 6,
  GO = 7,
  STRUCTURED_REPLY = 8,
  LIST_META_CONTEXT = 9,
  SET_META_CONTEXT = 10,
}

export const REP_ACK = 1;
export const REP_SERVER = 2;
export const REP_INFO = 3;
export const REP_META_CONTEXT = 4;
const REP_ERR = 0x80000000;
export const REP_ERR_UNSUP = REP_ERR + 1;
export const REP_ERR_POLICY = REP_ERR + 2;
export const REP_ERR_INVALID = REP_ERR + 3;
export const REP_ERR_TLS_REQD = REP_ERR + 5;
export const REP_ERR_UNKNOWN = REP_ERR + 6;
export const REP_ERR_SHUTDOWN = REP_ERR + 7;
export const REP_ERR_TOO_BIG = REP_ERR + 9;

export const INFO_EXPORT = 0;
export const INFO_NAME = 1;
export const INFO_DESCRIPTION = 2;
export const INFO_BLOCK_SIZE = 3;

// Transmission flags (16 bits, sent with the export size)
export const FLAG_HAS_FLAGS = 1 << 0;
export const FLAG_READ_ONLY = 1 << 1;
export const FLAG_SEND_FLUSH = 1 << 2;
export const FLAG_SEND_FUA = 1 << 3;
export const FLAG_SEND_TRIM = 1 << 5;
export const FLAG_SEND_WRITE_ZEROES = 1 << 6;
export const FLAG_SEND_DF = 1 << 7;
export const FLAG_CAN_MULTI_CONN = 1 << 8;
export const FLAG_SEND_CACHE = 1 << 10;
export const FLAG_SEND_FAST_ZERO = 1 << 11;

// Transmission phase
export const REQUEST_MAGIC = 0x25609513;
export const SIMPLE_REPLY_MAGIC = 0x67446698;
export const STRUCTURED_REPLY_MAGIC = 0x668e33ef;
export const REQUEST_HEADER_SIZE = 28;
export const SIMPLE_REPLY_HEADER_SIZE = 16;
export const STRUCTURED_REPLY_HEADER_SIZE = 20;

export const enum Cmd {
  READ = 0,
  WRITE = 1,
  DISC = 2,
  FLUSH = 3,
  TRIM = 4,
  CACHE = 5,
  WRITE_ZEROES = 6,
  BLOCK_STATUS = 7,
}

export const CMD_FLAG_FUA = 1 << 0;
export const CMD_FLAG_NO_HOLE = 1 << 1;
export const CMD_FLAG_DF = 1 << 2;
export const CMD_FLAG_REQ_ONE = 1 << 3;
export const CMD_FLAG_FAST_ZERO = 1 << 4;

export const REPLY_FLAG_DONE = 1 << 0;
export const REPLY_TYPE_NONE = 0;
export const REPLY_TYPE_OFFSET_DATA = 1;
export const REPLY_TYPE_BLOCK_STATUS = 5;
export const REPLY_TYPE_ERROR = 0x8001;

export const STATE_HOLE = 1 << 0;
export const STATE_ZERO = 1 << 1;

/** The only metadata context we serve. */
export const CONTEXT_BASE_ALLOCATION = 'base:allocation';

/** Error values allowed on the wire ("Error values"). */
export const Errno = {
  EPERM: 1,
  EIO: 5,
  ENOMEM: 12,
  EINVAL: 22,
  ENOSPC: 28,
  EOVERFLOW: 75,
  ENOTSUP: 95,
  ESHUTDOWN: 108,
} as const;
export type ErrnoName = keyof typeof Errno;

/** Strings on the wire (names, descriptions, error messages) are at most this long. */
export const MAX_STRING = 4096;
/** Block status replies carry at most this many descriptors. */
export const MAX_STATUS_DESCRIPTORS = 1 << 20;
