import { createHash } from 'node:crypto';

/**
 * Checksum a Data record keeps of its bytes (format-spec/upper-v1.md §Record):
 * the first 4 bytes of SHA-256, read as u32 LE. SHA-256 rather than CRC-32C
 * because node:crypto hashes large writes ~2.5x faster than a JS CRC table. The native addon's
 * writeBatch computes the same value on the thread pool (data-writer.ts); native-io.test.ts checks
 * the two agree.
 */
export function dataChecksum(data: Uint8Array): number {
  return createHash('sha256').update(data).digest().readUInt32LE(0);
}
