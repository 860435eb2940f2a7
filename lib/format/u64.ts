import { MalformedLayerError } from './errors.js';

/** Little-endian u64 as a JS number; values past 2^53 cannot be exact and are refused. */
export function readU64(b: Buffer, at: number): number {
  const lo = b.readUInt32LE(at);
  const hi = b.readUInt32LE(at + 4);
  if (hi > 0x1f_ffff) throw new MalformedLayerError('E_LAYER_BAD_FIELD', `64-bit field at ${at} exceeds 2^53`);
  return hi * 0x1_0000_0000 + lo;
}

export function writeU64(b: Buffer, at: number, v: number): void {
  b.writeUInt32LE(v % 0x1_0000_0000, at);
  b.writeUInt32LE(Math.floor(v / 0x1_0000_0000), at + 4);
}
