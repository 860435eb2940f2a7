import { parentPort, workerData } from 'node:worker_threads';
import { compressChunk, type CodecChoice } from './chunk-codec.js';

/**
 * A ChunkCompressor worker: compresses the whole chunks of each request with the choice it was
 * started with, and sends the stored bytes back packed into the request's own buffer.
 */

export interface CompressRequest {
  id: number;
  /** Whole chunks back to back, transferred (the worker owns it). */
  data: Uint8Array;
  chunkSize: number;
}

export type CompressReply =
  | { id: number; data: Uint8Array; /** compression and stored length of each chunk, in turn */ parts: number[] }
  | { id: number; error: { message: string; code?: string } };

const port = parentPort;
if (!port) throw new Error('chunk-compressor-worker runs only as a worker thread');
const choice = workerData as CodecChoice;

port.on('message', (request: CompressRequest) => {
  try {
    port.postMessage(compressAll(request), [request.data.buffer as ArrayBuffer]);
  } catch (e) {
    const err = e as Error & { code?: string };
    port.postMessage({ id: request.id, error: { message: err.message, code: err.code } } satisfies CompressReply);
  }
});

function compressAll({ id, data, chunkSize }: CompressRequest): CompressReply {
  const chunks = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const parts: number[] = [];
  let packed = 0;
  for (let at = 0; at < chunks.length; at += chunkSize) {
    const { compression, stored } = compressChunk(chunks.subarray(at, at + chunkSize), choice);
    // Packing in place is safe: no stored chunk is longer than its data, so `packed` never passes
    // `at`, the start of the chunk being read; copy() moves overlapping bytes correctly.
    stored.copy(chunks, packed);
    packed += stored.length;
    parts.push(compression, stored.length);
  }
  return { id, data, parts };
}
