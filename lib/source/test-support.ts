import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CodecChoice } from '../format/chunk-codec.js';
import { ChunkCompressor } from '../format/chunk-compressor.js';
import type { ChunkTable } from '../format/chunk-table.js';
import { LayerReader } from '../format/layer-reader.js';
import { LayerWriter } from '../format/layer-writer.js';
import { BufferRandomAccess } from '../format/random-access.js';
import type { BlobRangeSource } from './blob-range-source.js';

// Test support for lib/source tests (not a test file itself): real layer blobs in memory and
// BlobRangeSources over them that can corrupt, fail, stall, slow down and count.

export interface TestLayer {
  blob: Buffer;
  digest: string;
  chunks: ChunkTable;
  /** The layer's data (what reads at data offsets return). */
  data: Buffer;
}

/**
 * A layer blob of `chunkCount` chunks of random data (the last one short if `tail` is given);
 * chunks listed in `repeat` hold the same bytes as chunk 0, as zero-filled chunks would.
 */
export async function makeLayer(
  chunkSize: number,
  chunkCount: number,
  options: { repeat?: number[]; tail?: number; compress?: CodecChoice } = {},
): Promise<TestLayer> {
  const dataLength = chunkSize * chunkCount - (options.tail ? chunkSize - options.tail : 0);
  const data = randomBytes(dataLength);
  // Compressed layers get chunks that shrink (half zeroes) and, every third, ones that stay raw.
  if (options.compress) for (let i = 0; i < chunkCount; i++) if (i % 3 !== 2) data.fill(i, i * chunkSize + (chunkSize >> 1), Math.min((i + 1) * chunkSize, dataLength));
  for (const i of options.repeat ?? []) data.copy(data, i * chunkSize, 0, chunkSize);
  const parts: Buffer[] = [];
  const compressor = options.compress && new ChunkCompressor(options.compress);
  try {
    const writer = new LayerWriter({ write: async (b) => void parts.push(Buffer.from(b)) }, { virtualSize: dataLength, chunkSize, compressor });
    await writer.addData(0, data);
    await writer.finish();
  } finally {
    await compressor?.close();
  }
  const blob = Buffer.concat(parts);
  const reader = await LayerReader.open(new BufferRandomAccess(blob));
  return { blob, digest: `sha256:${createHash('sha256').update(blob).digest('hex')}`, chunks: reader.chunks, data };
}

export interface SourceBehaviour {
  /** Blob offsets whose byte is flipped whenever a response covers them. */
  corrupt?: number[];
  /** Error to throw for the nth request (1-based), or undefined to answer it. */
  fail?: (n: number) => Error | undefined;
  /** Never answer (and ignore the abort signal), like a hung connection. */
  stall?: boolean;
  /** Answer after this long. */
  delayMs?: number;
}

/** A remote source over an in-memory blob; records every request. */
export class MemorySource implements BlobRangeSource {
  readonly requests: { offset: number; length: number }[] = [];

  constructor(
    readonly name: string,
    private readonly layer: TestLayer,
    private readonly behaviour: SourceBehaviour = {},
  ) {}

  async fetch(blob: string, offset: number, length: number, signal: AbortSignal): Promise<Buffer> {
    if (blob !== this.layer.digest) throw new Error(`${this.name} has no blob ${blob}`);
    this.requests.push({ offset, length });
    const b = this.behaviour;
    if (b.stall) return new Promise<Buffer>(() => {});
    if (b.delayMs) await new Promise((r) => setTimeout(r, b.delayMs));
    signal.throwIfAborted();
    const err = b.fail?.(this.requests.length);
    if (err) throw err;
    const out = Buffer.from(this.layer.blob.subarray(offset, offset + length));
    for (const at of b.corrupt ?? []) if (at >= offset && at < offset + length) out[at - offset]! ^= 0xff;
    return out;
  }

  get bytesServed(): number {
    return this.requests.reduce((sum, r) => sum + r.length, 0);
  }
}

/** An error carrying the `retryable` flag the chain honours (as registry errors do). */
export function flakyError(message: string, retryable: boolean): Error {
  return Object.assign(new Error(message), { retryable });
}

/** A fresh temp dir for one test, and its removal. */
export async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'lazybd-source-'));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
