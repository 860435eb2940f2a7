import {
  FLAG_FIXED_NEWSTYLE,
  FLAG_NO_ZEROES,
  IHAVEOPT,
  INFO_BLOCK_SIZE,
  INFO_EXPORT,
  NBDMAGIC,
  OPTION_REPLY_MAGIC,
  REPLY_FLAG_DONE,
  REPLY_TYPE_BLOCK_STATUS,
  REPLY_TYPE_ERROR,
  REPLY_TYPE_NONE,
  REPLY_TYPE_OFFSET_DATA,
  SIMPLE_REPLY_HEADER_SIZE,
  SIMPLE_REPLY_MAGIC,
  STRUCTURED_REPLY_HEADER_SIZE,
  STRUCTURED_REPLY_MAGIC,
} from './protocol.js';

/** Encoders for every frame the server sends; the only place their layouts are spelled. */

export function greeting(): Buffer {
  const b = Buffer.allocUnsafe(18);
  b.writeBigUInt64BE(NBDMAGIC, 0);
  b.writeBigUInt64BE(IHAVEOPT, 8);
  b.writeUInt16BE(FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES, 16);
  return b;
}

export function optionReply(option: number, type: number, data?: Buffer): Buffer {
  const length = data?.length ?? 0;
  const b = Buffer.allocUnsafe(20 + length);
  b.writeBigUInt64BE(OPTION_REPLY_MAGIC, 0);
  b.writeUInt32BE(option, 8);
  b.writeUInt32BE(type, 12);
  b.writeUInt32BE(length, 16);
  data?.copy(b, 20);
  return b;
}

/** Reply to NBD_OPT_EXPORT_NAME (no option-reply framing). */
export function exportNameReply(size: number, flags: number, noZeroes: boolean): Buffer {
  const b = Buffer.alloc(noZeroes ? 10 : 134);
  writeU64(b, size, 0);
  b.writeUInt16BE(flags, 8);
  return b;
}

export function infoExport(size: number, flags: number): Buffer {
  const b = Buffer.allocUnsafe(12);
  b.writeUInt16BE(INFO_EXPORT, 0);
  writeU64(b, size, 2);
  b.writeUInt16BE(flags, 10);
  return b;
}

/** NBD_INFO_NAME / NBD_INFO_DESCRIPTION. */
export function infoString(type: number, text: string): Buffer {
  const s = Buffer.from(text, 'utf8');
  const b = Buffer.allocUnsafe(2 + s.length);
  b.writeUInt16BE(type, 0);
  s.copy(b, 2);
  return b;
}

export function infoBlockSize(minimum: number, preferred: number, maximum: number): Buffer {
  const b = Buffer.allocUnsafe(14);
  b.writeUInt16BE(INFO_BLOCK_SIZE, 0);
  b.writeUInt32BE(minimum, 2);
  b.writeUInt32BE(preferred, 6);
  b.writeUInt32BE(maximum, 10);
  return b;
}

/** NBD_REP_SERVER payload: name, then the description as free text. */
export function serverEntry(name: string, description: string): Buffer {
  const n = Buffer.from(name, 'utf8');
  const d = Buffer.from(description, 'utf8');
  const b = Buffer.allocUnsafe(4 + n.length + d.length);
  b.writeUInt32BE(n.length, 0);
  n.copy(b, 4);
  d.copy(b, 4 + n.length);
  return b;
}

export function metaContext(id: number, name: string): Buffer {
  const n = Buffer.from(name, 'utf8');
  const b = Buffer.allocUnsafe(4 + n.length);
  b.writeUInt32BE(id, 0);
  n.copy(b, 4);
  return b;
}

export function simpleReply(error: number, cookieHi: number, cookieLo: number): Buffer {
  const b = Buffer.allocUnsafe(SIMPLE_REPLY_HEADER_SIZE);
  b.writeUInt32BE(SIMPLE_REPLY_MAGIC, 0);
  b.writeUInt32BE(error, 4);
  b.writeUInt32BE(cookieHi, 8);
  b.writeUInt32BE(cookieLo, 12);
  return b;
}

function structuredHeader(b: Buffer, flags: number, type: number, cookieHi: number, cookieLo: number, length: number): void {
  b.writeUInt32BE(STRUCTURED_REPLY_MAGIC, 0);
  b.writeUInt16BE(flags, 4);
  b.writeUInt16BE(type, 6);
  b.writeUInt32BE(cookieHi, 8);
  b.writeUInt32BE(cookieLo, 12);
  b.writeUInt32BE(length, 16);
}

/** Header of a final NBD_REPLY_TYPE_OFFSET_DATA chunk; `dataLength` bytes of data follow it. */
export function offsetDataHeader(cookieHi: number, cookieLo: number, offset: number, dataLength: number): Buffer {
  const b = Buffer.allocUnsafe(STRUCTURED_REPLY_HEADER_SIZE + 8);
  structuredHeader(b, REPLY_FLAG_DONE, REPLY_TYPE_OFFSET_DATA, cookieHi, cookieLo, 8 + dataLength);
  writeU64(b, offset, STRUCTURED_REPLY_HEADER_SIZE);
  return b;
}

export function noneChunk(cookieHi: number, cookieLo: number): Buffer {
  const b = Buffer.allocUnsafe(STRUCTURED_REPLY_HEADER_SIZE);
  structuredHeader(b, REPLY_FLAG_DONE, REPLY_TYPE_NONE, cookieHi, cookieLo, 0);
  return b;
}

/** Final NBD_REPLY_TYPE_ERROR chunk; `message` is for humans and already short. */
export function errorChunk(cookieHi: number, cookieLo: number, error: number, message: string): Buffer {
  const m = Buffer.from(message, 'utf8');
  const b = Buffer.allocUnsafe(STRUCTURED_REPLY_HEADER_SIZE + 6 + m.length);
  structuredHeader(b, REPLY_FLAG_DONE, REPLY_TYPE_ERROR, cookieHi, cookieLo, 6 + m.length);
  b.writeUInt32BE(error, STRUCTURED_REPLY_HEADER_SIZE);
  b.writeUInt16BE(m.length, STRUCTURED_REPLY_HEADER_SIZE + 4);
  m.copy(b, STRUCTURED_REPLY_HEADER_SIZE + 6);
  return b;
}

/** Final NBD_REPLY_TYPE_BLOCK_STATUS chunk from parallel (length, flags) descriptor arrays. */
export function blockStatusChunk(
  cookieHi: number,
  cookieLo: number,
  contextId: number,
  lengths: readonly number[],
  flags: readonly number[],
): Buffer {
  const count = lengths.length;
  const b = Buffer.allocUnsafe(STRUCTURED_REPLY_HEADER_SIZE + 4 + 8 * count);
  structuredHeader(b, REPLY_FLAG_DONE, REPLY_TYPE_BLOCK_STATUS, cookieHi, cookieLo, 4 + 8 * count);
  b.writeUInt32BE(contextId, STRUCTURED_REPLY_HEADER_SIZE);
  let at = STRUCTURED_REPLY_HEADER_SIZE + 4;
  for (let i = 0; i < count; i++) {
    b.writeUInt32BE(lengths[i]!, at);
    b.writeUInt32BE(flags[i]!, at + 4);
    at += 8;
  }
  return b;
}

function writeU64(b: Buffer, value: number, at: number): void {
  b.writeUInt32BE(Math.floor(value / 0x1_0000_0000), at);
  b.writeUInt32BE(value >>> 0, at + 4);
}
