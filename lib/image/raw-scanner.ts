import type { FileHandle } from 'node:fs/promises';
import type { LayerWriter } from '../format/layer-writer.js';
import { dataRegions } from '../store/native-io.js';

/** Granularity of hole detection: a 4 KiB block of zeroes in the input becomes a hole. */
const ZERO_GRANULE = 4096;
const READ_SIZE = 4 << 20;
/** Bytes handed to the writer and not yet written: enough to keep hashing and writing overlapped. */
const MAX_WRITING = 16 << 20;
const ZEROES = Buffer.alloc(READ_SIZE);
/** Data regions asked for at a time: each request is a thread-pool round trip, which cost more than the lseeks. */
const REGION_BATCH = 1024;

export type Progress = (done: number, total: number) => void;

/**
 * Streams a raw disk image into a layer writer, leaving all-zero 4 KiB blocks out
 * (they read as zeroes anyway). Only the stretches the file system says may hold data are
 * read (SEEK_DATA/SEEK_HOLE on the native backend; the whole file otherwise): a sparse
 * image's holes cost no reads. Zero detection runs on what is read, so the layer is the
 * same on both backends. Reads ahead one block and keeps up to MAX_WRITING bytes being written,
 * so reading, hashing and writing overlap; memory stays bounded whatever the input size.
 */
export async function writeRawIntoLayer(input: FileHandle, size: number, writer: LayerWriter, onProgress?: Progress): Promise<void> {
  // Read buffers (READ_SIZE each) whose blocks the writer is done with.
  const buffers: Buffer[] = [];
  const readBlock = async ([offset, length]: Span): Promise<Buffer> => {
    const buf = (buffers.pop() ?? Buffer.allocUnsafeSlow(READ_SIZE)).subarray(0, length);
    let got = 0;
    while (got < buf.length) {
      const { bytesRead } = await input.read(buf, got, buf.length - got, offset + got);
      if (bytesRead === 0) throw new Error(`input shrank while reading at ${offset + got}`);
      got += bytesRead;
    }
    return buf;
  };
  const writing = new WriteWindow(MAX_WRITING);
  const blocks = readSpans(input.fd, size);
  let span = await blocks.next();
  let next = span.done ? undefined : readBlock(span.value);
  while (!span.done) {
    const [offset, length] = span.value;
    const block = await next!;
    span = await blocks.next();
    next = span.done ? undefined : readBlock(span.value);
    const writes: Promise<void>[] = [];
    if (!isZero(block)) for (const [at, end] of dataRuns(block)) writes.push(writing.add(writer.addData(offset + at, block.subarray(at, end)), end - at));
    // Its buffer reads a later block once the writer is done with it: a fresh 4 MiB buffer costs a
    // page fault per 4 KiB, which made reading into new ones ~3.7x slower (integration/bench/README.md).
    Promise.all(writes).then(() => buffers.push(Buffer.from(block.buffer, 0, READ_SIZE)), noop);
    await writing.drainTo(MAX_WRITING);
    onProgress?.(offset + length, size);
  }
  await writing.drainTo(0);
  if (size > 0) onProgress?.(size, size);
}

/** Writes in flight, oldest first, with their sizes; the first failure is what every later wait throws. */
class WriteWindow {
  private readonly queue: { done: Promise<void>; bytes: number }[] = [];
  private bytes = 0;
  private failure: { error: unknown } | null = null;

  constructor(private readonly limit: number) {}

  /** Tracks `write`; the promise returned resolves with it and never rejects (a failure surfaces in drainTo). */
  add(write: Promise<void>, bytes: number): Promise<void> {
    const done = write.catch((error: unknown) => void (this.failure ??= { error }));
    this.queue.push({ done, bytes });
    this.bytes += bytes;
    return write;
  }

  /** Waits until at most `bytes` (at most the limit) are in flight. */
  async drainTo(bytes: number): Promise<void> {
    while (this.bytes > Math.min(bytes, this.limit) && this.queue.length > 0) {
      const oldest = this.queue.shift()!;
      await oldest.done;
      this.bytes -= oldest.bytes;
    }
    if (this.failure) throw this.failure.error;
  }
}

/** [offset, length) of a read. */
type Span = [number, number];

/**
 * The reads that cover every stretch that may hold data, in order, each at most READ_SIZE.
 * Stretches are widened to whole granules (so zero detection sees the granules a full read
 * would) and merged where widening makes them touch.
 */
async function* readSpans(fd: number, size: number): AsyncGenerator<Span> {
  let pending: Span | null = null;
  for (let regions = await dataRegions(fd, 0, size, REGION_BATCH); regions.length > 0; regions = await dataRegions(fd, regions[regions.length - 1]![1], size, REGION_BATCH)) {
    for (const region of regions) {
      const start = Math.floor(region[0] / ZERO_GRANULE) * ZERO_GRANULE;
      const end = Math.min(size, Math.ceil(region[1] / ZERO_GRANULE) * ZERO_GRANULE);
      if (pending && start <= pending[1]) {
        pending[1] = Math.max(pending[1], end);
        continue;
      }
      if (pending) yield* split(pending);
      pending = [start, end];
    }
  }
  if (pending) yield* split(pending);
}

function* split([start, end]: Span): Generator<Span> {
  for (let at = start; at < end; at += READ_SIZE) yield [at, Math.min(READ_SIZE, end - at)];
}

/** The block's non-zero runs, in whole granules, as [start, end) within it. */
function* dataRuns(block: Buffer): Generator<[number, number]> {
  let runStart = -1;
  for (let at = 0; at < block.length; at += ZERO_GRANULE) {
    const zero = isZero(block.subarray(at, at + ZERO_GRANULE));
    if (!zero && runStart < 0) runStart = at;
    if (zero && runStart >= 0) {
      yield [runStart, at];
      runStart = -1;
    }
  }
  if (runStart >= 0) yield [runStart, block.length];
}

function isZero(b: Buffer): boolean {
  return b.compare(ZEROES, 0, b.length) === 0;
}

function noop(): void {}
