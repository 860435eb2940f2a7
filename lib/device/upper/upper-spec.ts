/** Constants of the upper directory format (format-spec/upper-v1.md). */

export const SECTOR_SIZE = 512;

export const DATA_FILE = 'data';
export const JOURNAL_FILE = 'journal';
/** Holds the pid of the process that has the upper open. */
export const LOCK_FILE = 'lock';
/** Compaction and creation write here first, then rename over JOURNAL_FILE. */
export const JOURNAL_TEMP_FILE = 'journal.tmp';

/** "lazybdUJ": lazybd upper journal. */
export const JOURNAL_MAGIC = Buffer.from('lazybdUJ', 'latin1');
export const JOURNAL_VERSION = 1;
export const JOURNAL_HEADER_SIZE = 32;
export const JOURNAL_RECORD_SIZE = 32;

/** Record ops. Data and Zero claim a range for the upper; Flush marks a durable point. */
export const enum JournalOp {
  Data = 1,
  Zero = 2,
  Flush = 3,
}

/** Offsets, lengths and sizes are stored as u64 but must stay below 2^48 (256 TiB). */
export const MAX_BYTE_VALUE = 2 ** 48;
