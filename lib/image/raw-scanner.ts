import type { FileHandle } from 'node:fs/promises';
import type { LayerWriter } from '../format/layer-writer.js';

/** Granularity of hole detection: a 4 KiB block of zeroes in the input becomes a hole. */
const ZERO_GRANULE = 4096;
const READ_SIZE = 4 << 20;
const ZEROES = Buffer.alloc(READ_SIZE);

export type Progress = (done: number, total: number) => void;

/**
 * Streams a raw disk image into a layer writer, leaving all-zero 4 KiB blocks out
 * (they read as zeroes anyway). Reads ahead one block so disk and hashing overlap;
 * memory stays at two read buffers whatever the input size.
 */
export async function writeRawIntoLayer(input: FileHandle, size: number, writer: LayerWriter, onProgress?: Progress): Promise<void> {
  const readBlock = async (offset: number): Promise<Buffer> => {
    const buf = Buffer.allocUnsafe(Math.min(READ_SIZE, size - offset));
    let got = 0;
    while (got < buf.length) {
      const { bytesRead } = await input.read(buf, got, buf.length - got, offset + got);
      if (bytesRead === 0) throw new Error(`input shrank while reading at ${offset + got}`);
      got += bytesRead;
    }
    return buf;
  };
  let next = size > 0 ? readBlock(0) : undefined;
  for (let offset = 0; offset < size; offset += READ_SIZE) {
    const block = await next!;
    next = offset + READ_SIZE < size ? readBlock(offset + READ_SIZE) : undefined;
    if (!isZero(block)) await writeDataRuns(writer, offset, block);
    onProgress?.(offset + block.length, size);
  }
}

/** Adds the block's non-zero runs (in whole granules) as data extents. */
async function writeDataRuns(writer: LayerWriter, base: number, block: Buffer): Promise<void> {
  let runStart = -1;
  for (let at = 0; at < block.length; at += ZERO_GRANULE) {
    const zero = isZero(block.subarray(at, at + ZERO_GRANULE));
    if (!zero && runStart < 0) runStart = at;
    if (zero && runStart >= 0) {
      await writer.addData(base + runStart, block.subarray(runStart, at));
      runStart = -1;
    }
  }
  if (runStart >= 0) await writer.addData(base + runStart, block.subarray(runStart));
}

function isZero(b: Buffer): boolean {
  return b.compare(ZEROES, 0, b.length) === 0;
}
