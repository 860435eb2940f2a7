import { crc32c } from './crc32c.js';
import { readU48, writeU48 } from './u48.js';
import { JOURNAL_HEADER_SIZE, JOURNAL_MAGIC, JOURNAL_RECORD_SIZE, JOURNAL_VERSION } from './upper-spec.js';
import { UpperError } from './errors.js';

/** The journal's first 32 bytes (format-spec/upper-v1.md §Header). */
export interface JournalHeader {
  virtualSize: number;
  /** Sequence number of the first record. */
  baseSequence: number;
}

export function encodeHeader(h: JournalHeader): Buffer {
  const b = Buffer.alloc(JOURNAL_HEADER_SIZE);
  JOURNAL_MAGIC.copy(b, 0);
  b.writeUInt32LE(JOURNAL_VERSION, 8);
  b.writeUInt32LE(JOURNAL_RECORD_SIZE, 12);
  writeU48(b, 16, h.virtualSize);
  b.writeUInt32LE(h.baseSequence >>> 0, 24);
  b.writeUInt32LE(crc32c(b, 0, 28), 28);
  return b;
}

/** The header is only ever written whole (temp file + rename), so any flaw means corruption, not a crash. */
export function decodeHeader(b: Buffer, where: string): JournalHeader {
  const bad = (why: string) => new UpperError('E_UPPER_CORRUPT', `${where}: ${why}`);
  if (b.length < JOURNAL_HEADER_SIZE) throw bad('journal header truncated');
  if (!b.subarray(0, 8).equals(JOURNAL_MAGIC)) throw bad('not an upper journal (bad magic)');
  if (b.readUInt32LE(28) !== crc32c(b, 0, 28)) throw bad('journal header checksum mismatch');
  const version = b.readUInt32LE(8);
  if (version !== JOURNAL_VERSION) throw bad(`unsupported journal version ${version}`);
  if (b.readUInt32LE(12) !== JOURNAL_RECORD_SIZE) throw bad(`unsupported record size ${b.readUInt32LE(12)}`);
  const virtualSize = readU48(b, 16);
  if (virtualSize < 0) throw bad('virtual size out of range');
  return { virtualSize, baseSequence: b.readUInt32LE(24) };
}
