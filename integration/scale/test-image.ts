// The image a fleet starts: a sparse raw disk of random data in 1 MiB runs, its start-up
// reads (the "trace"), and the lazybd image with that trace attached, pushed to the registry.
import { createHash, randomBytes } from 'node:crypto';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { seededRandom } from '../support/seeded-random.js';

const MiB = 1 << 20;
const RUN = MiB;
const ALIGN = 4096;

export interface SourceImageOptions {
  /** Virtual size. */
  imageMiB: number;
  /** Share of the virtual size that holds data (the rest are holes). */
  dataFraction: number;
  /** Share of the data the start-up reads touch, counted in whole chunks. */
  traceFraction: number;
  chunkSize: number;
  seed: number;
}

export interface SourceImage {
  rawPath: string;
  virtualBytes: number;
  dataBytes: number;
  /** The start-up reads, in order: [offset, length]. */
  reads: [number, number][];
  /** sha256 of each read's bytes in the source. */
  readSha256: string[];
  /** sha256 of all reads' bytes, concatenated in order. */
  replaySha256: string;
}

/**
 * Writes the raw disk and picks the reads. Data positions and reads come from `seed`
 * (one seed, one layout); the data itself is random, so no two chunks share a digest.
 * Reads are 4 KiB–128 KiB, 4 KiB aligned, inside data runs, in random order, until the
 * chunks they touch reach `traceFraction` of the data.
 */
export async function writeSourceImage(dir: string, o: SourceImageOptions): Promise<SourceImage> {
  const slots = Math.floor(o.imageMiB);
  const runs = Math.max(1, Math.round(slots * o.dataFraction));
  const rnd = seededRandom(o.seed);
  const order = Array.from({ length: slots }, (_, i) => i);
  for (let i = slots - 1; i > 0; i--) {
    const j = rnd(i + 1);
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  const runStarts = order.slice(0, runs).sort((a, b) => a - b).map((s) => s * RUN);
  const rawPath = join(dir, 'disk.raw');
  const h = await open(rawPath, 'w');
  try {
    await h.truncate(slots * RUN);
    for (const at of runStarts) await h.write(randomBytes(RUN), 0, RUN, at);
  } finally {
    await h.close();
  }

  const wanted = Math.max(1, Math.ceil((runs * RUN * o.traceFraction) / o.chunkSize));
  const touched = new Set<number>();
  const reads: [number, number][] = [];
  while (touched.size < wanted) {
    const at = runStarts[rnd(runs)]! + rnd(RUN / ALIGN) * ALIGN;
    const length = Math.min((1 + rnd(32)) * ALIGN, runStartEnd(at) - at);
    reads.push([at, length]);
    for (let c = Math.floor(at / o.chunkSize); c <= Math.floor((at + length - 1) / o.chunkSize); c++) touched.add(c);
  }
  const { readSha256, replaySha256 } = await hashReads(rawPath, reads);
  return { rawPath, virtualBytes: slots * RUN, dataBytes: runs * RUN, reads, readSha256, replaySha256 };
}

function runStartEnd(offset: number): number {
  return (Math.floor(offset / RUN) + 1) * RUN;
}

async function hashReads(path: string, reads: [number, number][]): Promise<{ readSha256: string[]; replaySha256: string }> {
  const all = createHash('sha256');
  const readSha256: string[] = [];
  const h = await open(path, 'r');
  try {
    for (const [offset, length] of reads) {
      const b = Buffer.alloc(length);
      await h.read(b, 0, length, offset);
      all.update(b);
      readSha256.push(createHash('sha256').update(b).digest('hex'));
    }
  } finally {
    await h.close();
  }
  return { readSha256, replaySha256: all.digest('hex') };
}
