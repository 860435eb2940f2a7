import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { LazybdError } from '../errors.js';
import { compressChunk, type CodecChoice, type EncodedChunk } from './chunk-codec.js';
import type { CompressReply, CompressRequest } from './chunk-compressor-worker.js';
import { Compression } from './layer-spec.js';

/** Compiled next to this module (dist/lib/format/). */
const WORKER_URL = new URL('./chunk-compressor-worker.js', import.meta.url);

export type ChunkCompressorErrorCode = 'E_COMPRESSOR_CLOSED' | 'E_COMPRESSOR_WORKER';

/** A compress call that could not run: the compressor was closed, or its worker failed. */
export class ChunkCompressorError extends LazybdError {
  constructor(code: ChunkCompressorErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

interface Call {
  resolve(results: EncodedChunk[]): void;
  reject(error: Error): void;
}

interface PoolWorker {
  worker: Worker;
  calls: Map<number, Call>;
}

/**
 * Compresses whole chunks off the main thread, on a small pool of worker threads started as calls
 * need them. An idle worker is unref'd, so a forgotten compressor never keeps the process alive;
 * a worker with calls in flight is ref'd, so the process does not exit under an awaited call.
 */
export class ChunkCompressor {
  readonly #choice: CodecChoice;
  readonly #threads: number;
  readonly #pool: PoolWorker[] = [];
  #nextId = 0;
  #closed = false;

  /** Throws E_BAD_CODEC or E_CODEC_UNAVAILABLE here, on the caller's thread, not later from a worker. */
  constructor(choice: CodecChoice, options: { threads?: number } = {}) {
    compressChunk(Buffer.alloc(64), choice);
    const threads = options.threads ?? Math.min(4, availableParallelism());
    if (!Number.isInteger(threads) || threads < 1) throw new RangeError(`threads must be a positive integer, not ${threads}`);
    this.#choice = { ...choice };
    this.#threads = threads;
  }

  /** Worker threads running now (none until the first call that needs one, none after close). */
  get workers(): number {
    return this.#pool.length;
  }

  /**
   * The stored form of each chunk in `chunks` (whole chunks of `chunkSize` back to back, the last
   * may be short), in order. `chunks` is copied before this returns, so the caller may reuse it at
   * once; the results never alias it. Calls may overlap: each is queued on the least busy worker.
   */
  async compress(chunks: Buffer, chunkSize: number): Promise<EncodedChunk[]> {
    if (this.#closed) throw new ChunkCompressorError('E_COMPRESSOR_CLOSED', 'ChunkCompressor used after close()');
    if (!Number.isInteger(chunkSize) || chunkSize < 1) throw new RangeError(`chunkSize must be a positive integer, not ${chunkSize}`);
    // A copy that owns its whole ArrayBuffer, so it can be transferred (and a view of a larger buffer is not cloned whole).
    const copy = Buffer.allocUnsafeSlow(chunks.length);
    chunks.copy(copy);
    if (this.#choice.codec === 'none') return split(copy, chunkSize);
    if (copy.length === 0) return [];

    const w = this.#leastBusy();
    const id = this.#nextId++;
    return new Promise<EncodedChunk[]>((resolve, reject) => {
      w.calls.set(id, { resolve, reject });
      if (w.calls.size === 1) w.worker.ref();
      w.worker.postMessage({ id, data: copy, chunkSize } satisfies CompressRequest, [copy.buffer]);
    });
  }

  /** Stops the workers; calls in flight reject with E_COMPRESSOR_CLOSED, as does any later call. */
  async close(): Promise<void> {
    this.#closed = true;
    const pool = this.#pool.splice(0);
    for (const w of pool) fail(w, new ChunkCompressorError('E_COMPRESSOR_CLOSED', 'ChunkCompressor closed while compressing'));
    await Promise.all(pool.map((w) => w.worker.terminate()));
  }

  #leastBusy(): PoolWorker {
    let best: PoolWorker | undefined;
    for (const w of this.#pool) if (!best || w.calls.size < best.calls.size) best = w;
    if (best && (best.calls.size === 0 || this.#pool.length === this.#threads)) return best;
    return this.#start();
  }

  #start(): PoolWorker {
    const worker = new Worker(WORKER_URL, { workerData: this.#choice, execArgv: workerExecArgv() });
    worker.unref();
    const w: PoolWorker = { worker, calls: new Map() };
    worker.on('message', (reply: CompressReply) => this.#settle(w, reply));
    worker.on('error', (e) => this.#lose(w, new ChunkCompressorError('E_COMPRESSOR_WORKER', `compression worker failed: ${e.message}`, { cause: e })));
    worker.on('exit', (code) => this.#lose(w, new ChunkCompressorError('E_COMPRESSOR_WORKER', `compression worker exited (code ${code}) with calls in flight`)));
    this.#pool.push(w);
    return w;
  }

  #settle(w: PoolWorker, reply: CompressReply): void {
    const call = w.calls.get(reply.id);
    if (!call) return;
    w.calls.delete(reply.id);
    if (w.calls.size === 0) w.worker.unref();
    if ('error' in reply) {
      const why = reply.error.code ? `${reply.error.code}: ${reply.error.message}` : reply.error.message;
      call.reject(new ChunkCompressorError('E_COMPRESSOR_WORKER', `compression worker failed: ${why}`));
      return;
    }
    call.resolve(unpack(reply.data, reply.parts));
  }

  /** A worker that errored or exited: its calls fail, and the next call starts a fresh one. */
  #lose(w: PoolWorker, error: Error): void {
    const at = this.#pool.indexOf(w);
    if (at >= 0) this.#pool.splice(at, 1);
    fail(w, error);
  }
}

/** The parent's flags less --input-type, which applies to --eval input only and fails a worker started from a file. */
function workerExecArgv(): string[] {
  const args = process.execArgv;
  return args.filter((arg, i) => !arg.startsWith('--input-type') && args[i - 1] !== '--input-type');
}

function fail(w: PoolWorker, error: Error): void {
  for (const call of w.calls.values()) call.reject(error);
  w.calls.clear();
}

function split(chunks: Buffer, chunkSize: number): EncodedChunk[] {
  const results: EncodedChunk[] = [];
  for (let at = 0; at < chunks.length; at += chunkSize) results.push({ compression: Compression.None, stored: chunks.subarray(at, at + chunkSize) });
  return results;
}

/** Views of the worker's packed reply, one per chunk (no copy). */
function unpack(data: Uint8Array, parts: number[]): EncodedChunk[] {
  const results: EncodedChunk[] = [];
  let at = data.byteOffset;
  for (let i = 0; i < parts.length; i += 2) {
    results.push({ compression: parts[i] as Compression, stored: Buffer.from(data.buffer, at, parts[i + 1]) });
    at += parts[i + 1];
  }
  return results;
}
