import { createHash } from 'node:crypto';
import { parseCodec, type EncodedChunk } from '../../lib/format/chunk-codec.js';
import { ChunkCompressor } from '../../lib/format/chunk-compressor.js';
import { LayerWriter } from '../../lib/format/layer-writer.js';
import type { ByteSink } from '../../lib/format/random-access.js';
import { seededRandom } from '../support/seeded-random.js';

/**
 * The recipes behind format-spec/vectors/: each layer is a list of extents with
 * deterministic contents, so the expected bytes of any read come from a plain model,
 * not from the reader under test.
 */
export interface LayerRecipe {
  name: string;
  virtualSize: number;
  chunkSize: number;
  /** A --compress value: the layer is then 1.2, its chunks compressed where they shrink. */
  compress?: string;
  /** `noise` data is seeded random bytes (does not compress); `data` is pattern() (compresses well). */
  extents: ({ kind: 'data' | 'noise'; offset: number; length: number; seed: number } | { kind: 'zero'; offset: number; length: number })[];
}

export interface StackRecipe {
  name: string;
  /** Bottom first. */
  layers: string[];
  reads: [offset: number, length: number][];
}

export const LAYERS: LayerRecipe[] = [
  {
    name: 'single-extent',
    virtualSize: 64 * 1024,
    chunkSize: 4096,
    extents: [{ kind: 'data', offset: 8192, length: 12288, seed: 1 }],
  },
  {
    name: 'mixed-kinds',
    virtualSize: 1 << 20,
    chunkSize: 4096,
    extents: [
      { kind: 'data', offset: 0, length: 1024, seed: 2 },
      { kind: 'zero', offset: 4096, length: 65536 },
      { kind: 'data', offset: 131072, length: 5120, seed: 3 },
      { kind: 'data', offset: 1048064, length: 512, seed: 4 },
    ],
  },
  {
    name: 'odd-size-tail',
    virtualSize: 10_000,
    chunkSize: 4096,
    extents: [{ kind: 'data', offset: 9216, length: 784, seed: 5 }],
  },
  {
    name: 'top-of-stack',
    virtualSize: 1 << 20,
    chunkSize: 8192,
    extents: [
      { kind: 'zero', offset: 0, length: 512 },
      { kind: 'data', offset: 2048, length: 4096, seed: 6 },
      { kind: 'data', offset: 133120, length: 1024, seed: 7 },
    ],
  },
  ...(['zstd', 'lz4'] as const).map((codec, k) => ({
    // Compressed chunks, a raw one among them (the noise fills chunk 2), a short last chunk.
    name: `${codec}-chunks`,
    virtualSize: 1 << 20,
    chunkSize: 4096,
    compress: codec,
    extents: [
      { kind: 'data' as const, offset: 0, length: 8192, seed: 8 + k },
      { kind: 'noise' as const, offset: 16384, length: 4096, seed: 10 + k },
      { kind: 'zero' as const, offset: 20480, length: 8192 },
      { kind: 'data' as const, offset: 65536, length: 6144 + 512 * k, seed: 12 + k },
    ],
  })),
];

/**
 * Layers an older writer made, committed as blobs because no writer of today can make them:
 * make-vectors lists them but never rewrites them. Their contents follow `recipe`.
 * v1.0-random-uuid.layer: the 1.0 writer (commit 163cd6e) on the mixed-kinds recipe, with a
 * random uuid in header and trailer, as every 1.0 layer has.
 */
export const LEGACY_LAYERS: { name: string; formatVersion: string; recipe: string }[] = [{ name: 'v1.0-random-uuid', formatVersion: '1.0', recipe: 'mixed-kinds' }];

/** The recipe a vector layer (current or legacy) follows. */
export function recipeOf(name: string): LayerRecipe {
  const recipe = LEGACY_LAYERS.find((l) => l.name === name)?.recipe ?? name;
  const found = LAYERS.find((l) => l.name === recipe);
  if (!found) throw new Error(`no vector layer ${name}`);
  return found;
}

export const STACKS: StackRecipe[] = [
  { name: 'single-extent', layers: ['single-extent'], reads: [[0, 65536], [8192, 4096], [8000, 600], [20480, 1]] },
  { name: 'mixed-kinds', layers: ['mixed-kinds'], reads: [[0, 1 << 20], [1000, 100], [131072 + 4000, 2000], [1048575, 1]] },
  { name: 'odd-size-tail', layers: ['odd-size-tail'], reads: [[0, 10_000], [9900, 100], [9999, 1]] },
  { name: 'two-layers', layers: ['mixed-kinds', 'top-of-stack'], reads: [[0, 1 << 20], [0, 8192], [131072, 8192], [4000, 3000]] },
  { name: 'v1.0-under-v1.1', layers: ['v1.0-random-uuid', 'top-of-stack'], reads: [[0, 1 << 20], [0, 8192], [131072, 8192], [4000, 3000]] },
  { name: 'zstd-chunks', layers: ['zstd-chunks'], reads: [[0, 1 << 20], [4000, 200], [8192, 10000], [65536 + 4090, 20], [71679, 1]] },
  { name: 'lz4-chunks', layers: ['lz4-chunks'], reads: [[0, 1 << 20], [4000, 200], [8192, 10000], [65536 + 4090, 20], [72191, 1]] },
  // 1.2 and 1.1 layers in one stack: uncompressed over lz4 over zstd.
  { name: 'mixed-versions', layers: ['zstd-chunks', 'lz4-chunks', 'top-of-stack'], reads: [[0, 1 << 20], [0, 8192], [65536, 8192], [131072, 4096], [4000, 3000]] },
];

/** Deterministic, position-dependent bytes, so a misplaced byte never looks right. */
export function pattern(seed: number, length: number): Buffer {
  const b = Buffer.alloc(length);
  for (let i = 0; i < length; i++) b[i] = (i * 31 + seed * 97 + (i >> 9)) & 0xff;
  return b;
}

/** Seeded random bytes: no codec shrinks them, so their chunk is stored raw. */
export function noise(seed: number, length: number): Buffer {
  const rand = seededRandom(seed);
  const b = Buffer.alloc(length);
  for (let i = 0; i < length; i++) b[i] = rand(256);
  return b;
}

function contents(e: { kind: 'data' | 'noise'; seed: number; length: number }): Buffer {
  return e.kind === 'noise' ? noise(e.seed, e.length) : pattern(e.seed, e.length);
}

/** `lie` rewrites the compressor's output (malformed vectors: a writer that stores what does not decode). */
export async function writeRecipe(recipe: LayerRecipe, sink: ByteSink, lie?: (chunk: EncodedChunk, index: number) => EncodedChunk): Promise<void> {
  const real = recipe.compress ? new ChunkCompressor(parseCodec(recipe.compress), { threads: 1 }) : undefined;
  let written = 0;
  const compressor = real && lie ? ({ compress: async (chunks: Buffer, size: number) => (await real.compress(chunks, size)).map((c) => lie(c, written++)) } as unknown as ChunkCompressor) : real;
  try {
    const w = new LayerWriter(sink, { virtualSize: recipe.virtualSize, chunkSize: recipe.chunkSize, compressor });
    for (const e of recipe.extents) {
      if (e.kind === 'zero') w.addZero(e.offset, e.length);
      else await w.addData(e.offset, contents(e));
    }
    await w.finish();
  } finally {
    await real?.close();
  }
}

/** The device a stack shows, computed from the recipes alone. */
export function modelDevice(layers: LayerRecipe[]): Buffer {
  const size = layers[layers.length - 1]!.virtualSize;
  const device = Buffer.alloc(size);
  for (const l of layers) {
    for (const e of l.extents) {
      const len = Math.min(e.length, size - e.offset);
      if (e.kind === 'zero') device.fill(0, e.offset, e.offset + len);
      else contents(e).copy(device, e.offset, 0, len);
    }
  }
  return device;
}

export function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}
