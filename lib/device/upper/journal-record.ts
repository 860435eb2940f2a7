import { crc32c } from './crc32c.js';
import { readU48, writeU48 } from './u48.js';
import { JOURNAL_RECORD_SIZE, JournalOp } from './upper-spec.js';

/** One journal record (format-spec/upper-v1.md §Record). */
export interface JournalRecord {
  op: JournalOp;
  /** Bytes; 0 for Flush. */
  offset: number;
  length: number;
  /** Position in the journal's history, modulo 2^32. */
  sequence: number;
  /** Data: first 4 bytes (LE) of SHA-256 of the data; 0 otherwise. */
  dataChecksum: number;
}

const CRC_AT = JOURNAL_RECORD_SIZE - 4;

export function encodeRecord(r: JournalRecord, into: Buffer, at: number): void {
  writeU48(into, at, r.offset);
  writeU48(into, at + 8, r.length);
  into.writeUInt32LE(r.sequence >>> 0, at + 16);
  into.writeUInt32LE(r.dataChecksum >>> 0, at + 20);
  into.writeUInt32LE(r.op, at + 24); // op byte + 3 reserved zero bytes
  into.writeUInt32LE(crc32c(into, at, at + CRC_AT), at + CRC_AT);
}

/** The record at `at`, or null when its bytes are not a well-formed record (torn, garbled, never written). */
export function decodeRecord(from: Buffer, at: number): JournalRecord | null {
  if (from.readUInt32LE(at + CRC_AT) !== crc32c(from, at, at + CRC_AT)) return null;
  const opWord = from.readUInt32LE(at + 24);
  if (opWord !== JournalOp.Data && opWord !== JournalOp.Zero && opWord !== JournalOp.Flush) return null;
  const offset = readU48(from, at);
  const length = readU48(from, at + 8);
  if (offset < 0 || length < 0) return null;
  return { op: opWord, offset, length, sequence: from.readUInt32LE(at + 16), dataChecksum: from.readUInt32LE(at + 20) };
}
