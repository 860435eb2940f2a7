import { Compression, TRAILER_SIZE } from '../../lib/format/layer-spec.js';
import { LayerReader } from '../../lib/format/layer-reader.js';
import { BufferRandomAccess, type ByteSink } from '../../lib/format/random-access.js';
import { recipeOf, writeRecipe } from './recipes.js';

/** Broken blobs derived from good ones, each with the error code a reader must raise. */
export const MALFORMED: { name: string; error: string; make: (good: Map<string, Buffer>) => Buffer }[] = [
  { name: 'bad-trailer-magic', error: 'E_LAYER_BAD_MAGIC', make: (g) => flip(g.get('single-extent')!, -TRAILER_SIZE) },
  { name: 'truncated-tail', error: 'E_LAYER_BAD_MAGIC', make: (g) => g.get('single-extent')!.subarray(0, -7) },
  { name: 'future-major-version', error: 'E_LAYER_BAD_VERSION', make: (g) => set16(g.get('single-extent')!, -TRAILER_SIZE + 8, 2) },
  { name: 'index-digest-mismatch', error: 'E_LAYER_META_DIGEST', make: (g) => flip(g.get('mixed-kinds')!, metaOffset(g.get('mixed-kinds')!) + 2) },
  { name: 'index-past-end', error: 'E_LAYER_OUT_OF_BOUNDS', make: (g) => set16(g.get('mixed-kinds')!, -TRAILER_SIZE + 48, 0xfff0) },
  // Compressed chunks in a layer whose trailer says 1.1 (compression came with 1.2).
  { name: 'compressed-in-1.1', error: 'E_LAYER_BAD_FIELD', make: (g) => set16(g.get('zstd-chunks')!, -TRAILER_SIZE + 10, 1) },
];

/**
 * Layers that open cleanly but hold a chunk a reader must refuse when it reads that chunk's data
 * (LayerReader.readChunkData), with the error code it must raise.
 */
export const BAD_CHUNKS: { name: string; chunk: number; error: string; make: (good: Map<string, Buffer>) => Promise<Buffer> }[] = [
  // A bit flipped inside a compressed chunk's stored bytes: caught by the digest, before any decoder runs.
  { name: 'zstd-chunk-flipped', chunk: 1, error: 'E_CHUNK_DIGEST', make: async (g) => flip(g.get('zstd-chunks')!, await storedOffset(g.get('zstd-chunks')!, 1) + 9) },
  // The writer stored a truncated zstd frame (its digest matches): caught by the decoder.
  { name: 'zstd-frame-truncated', chunk: 1, error: 'E_CHUNK_DECODE', make: () => lyingLayer('zstd-chunks', 1, (s) => s.subarray(0, s.length - 5)) },
  // An lz4 block whose first match points before the start of the output (1 literal, then offset 2).
  { name: 'lz4-offset-before-start', chunk: 0, error: 'E_CHUNK_DECODE', make: () => lyingLayer('lz4-chunks', 0, () => Buffer.from([0x10, 0x61, 0x02, 0x00, 0x00])) },
];

async function storedOffset(blob: Buffer, chunk: number): Promise<number> {
  const reader = await LayerReader.open(new BufferRandomAccess(blob));
  if (reader.chunks.compression(chunk) === Compression.None) throw new Error(`chunk ${chunk} is not compressed`);
  return reader.chunks.offset(chunk);
}

/** The recipe's layer, with chunk `index`'s stored bytes replaced by `bad(stored)` (and its digest taken over those). */
async function lyingLayer(recipe: string, index: number, bad: (stored: Buffer) => Buffer): Promise<Buffer> {
  const parts: Buffer[] = [];
  const sink: ByteSink = { write: async (d) => void parts.push(Buffer.from(d)) };
  await writeRecipe(recipeOf(recipe), sink, (c, i) => {
    if (i !== index) return c;
    if (c.compression === Compression.None) throw new Error(`chunk ${index} of ${recipe} is not compressed`);
    return { compression: c.compression, stored: bad(c.stored) };
  });
  return Buffer.concat(parts);
}

function metaOffset(blob: Buffer): number {
  return blob.readUInt32LE(blob.length - TRAILER_SIZE + 48);
}

function flip(blob: Buffer, at: number): Buffer {
  const b = Buffer.from(blob);
  b[at < 0 ? b.length + at : at] ^= 0xff;
  return b;
}

function set16(blob: Buffer, at: number, v: number): Buffer {
  const b = Buffer.from(blob);
  b.writeUInt16LE(v, at < 0 ? b.length + at : at);
  return b;
}
