/** A u64 LE field limited to 48 bits, so every value is an exact JS number. */
export function writeU48(b: Buffer, at: number, v: number): void {
  b.writeUIntLE(v, at, 6);
  b.writeUInt16LE(0, at + 6);
}

/** -1 when the top 16 bits are set (a value this format never writes). */
export function readU48(b: Buffer, at: number): number {
  return b.readUInt16LE(at + 6) === 0 ? b.readUIntLE(at, 6) : -1;
}
