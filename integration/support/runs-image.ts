import { randomBytes, randomInt } from 'node:crypto';
import { createAndPush, type CreatedImage } from './push-image.js';

export interface RunsImage {
  /** The device's bytes. */
  source: Buffer;
  /** Where each run of random data starts on the device. */
  runs: number[];
  created: CreatedImage;
}

/**
 * A sparse device of `size` bytes holding `count` runs of `runLength` random bytes, one at
 * the start of each of `count` equal stretches plus a random multiple of 4 KiB below 256 KiB,
 * made the image disk:v1 of the store `<dir>/origin` and pushed to `remote` (plain http).
 * Uncompressed: random runs would be stored raw anyway, and the tests that use it address blob
 * bytes, which then are the runs packed after the 512-byte header.
 */
export async function pushRunsImage(dir: string, remote: string, o: { size: number; count: number; runLength: number }): Promise<RunsImage> {
  const source = Buffer.alloc(o.size);
  const stretch = o.size / o.count;
  if (stretch < o.runLength + (256 << 10)) throw new RangeError('runs do not fit their stretches');
  const runs = Array.from({ length: o.count }, (_, i) => i * stretch + randomInt(0, 64) * 4096);
  for (const at of runs) randomBytes(o.runLength).copy(source, at);
  return { source, runs, created: await createAndPush(dir, source, remote, ['--compress', 'none']) };
}
