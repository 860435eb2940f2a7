import { createRequire } from 'node:module';
import { getSystemErrorName } from 'node:util';

/**
 * The one place that picks the file I/O backend, once, at load: the native addon (native/, built by
 * node-gyp at `npm ci`) when it loads, else pure TypeScript. LAZYBD_NATIVE=0 forces pure, so the
 * suite runs both. Native adds what Node lacks: SEEK_DATA/SEEK_HOLE (create skips holes instead of
 * reading them), PUNCH_HOLE (a trimmed upper gives its space back) and RWF_NOWAIT reads (a page-cache
 * hit is served on the main thread without a thread-pool hand-off), and chunk SHA-256 on the thread
 * pool without a copy (create hashes chunks and the blob on two cores). Pure keeps every result
 * byte-identical, only slower or without reclaiming space.
 */

interface Addon {
  dataRegions(fd: number, offset: number, limit: number, max: number): Promise<number[]>;
  punchHole(fd: number, offset: number, length: number): Promise<void>;
  readNoWait(fd: number, target: Uint8Array, at: number, length: number, position: number): number;
  sha256Chunks(data: Uint8Array, chunkSize: number): Promise<Buffer>;
  setSendBuffer(fd: number, bytes: number): number;
  writeBatch(fd: number, buffers: Uint8Array[], positions: Float64Array, checksums: Uint32Array, errors: Int32Array): Promise<void>;
}

export interface FileIoBackend {
  kind: 'native' | 'pure';
  /** punchHole can free blocks (it always answers false otherwise). */
  canPunchHoles: boolean;
  /** Why this backend: what the native one adds, or why it is not in use. */
  detail: string;
}

/** From dist/lib/store/ (where this module runs) to the addon node-gyp builds in native/build. */
const ADDON_PATH = '../../../native/build/Release/lazybd_io.node';

function load(): { addon: Addon | null; backend: FileIoBackend } {
  if (process.env.LAZYBD_NATIVE === '0') return { addon: null, backend: { kind: 'pure', canPunchHoles: false, detail: 'LAZYBD_NATIVE=0' } };
  try {
    const addon = createRequire(import.meta.url)(ADDON_PATH) as Addon;
    return { addon, backend: { kind: 'native', canPunchHoles: true, detail: 'lseek SEEK_DATA/SEEK_HOLE, fallocate PUNCH_HOLE, preadv2 RWF_NOWAIT, SO_SNDBUF, batched pwrite and SHA-256 on the thread pool' } };
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const why = err.code === 'MODULE_NOT_FOUND' ? 'native addon not built' : `native addon failed to load: ${err.message.split('\n')[0]}`;
    return { addon: null, backend: { kind: 'pure', canPunchHoles: false, detail: why } };
  }
}

const { addon, backend } = load();

export const fileIoBackend: Readonly<FileIoBackend> = backend;

/** One line for `lazybd --version`. */
export function fileIoLine(): string {
  return `file I/O: ${backend.kind} (${backend.detail})`;
}

/**
 * Up to `max` stretches [start, end) at or after `offset` that may hold data, in order and clamped
 * to `size`; none when there is none (found in one thread-pool job). Without SEEK_DATA the rest of
 * the file is one stretch: the caller reads it all and finds the zeroes itself, so the answer is a
 * superset of the data either way.
 */
export async function dataRegions(fd: number, offset: number, size: number, max: number): Promise<[number, number][]> {
  if (offset >= size) return [];
  if (!addon) return [[offset, size]];
  const flat = await addon.dataRegions(fd, offset, size, max);
  const out: [number, number][] = [];
  for (let i = 0; i < flat.length; i += 2) out.push([flat[i]!, Math.min(flat[i + 1]!, size)]);
  return out;
}

/**
 * Frees the file blocks of [offset, offset + length), which then read as zeroes (the size stays).
 * True when done; false when the backend or the file system cannot (nothing changed then).
 */
export async function punchHole(fd: number, offset: number, length: number): Promise<boolean> {
  if (!addon || length <= 0) return false;
  try {
    await addon.punchHole(fd, offset, length);
    return true;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EOPNOTSUPP' || code === 'ENOSYS') return false;
    throw e;
  }
}

/**
 * Reads what the page cache holds of [position, position + length) into target[at…] right now,
 * without waiting for the disk: the bytes read (0 at end of file, fewer when only a prefix is cached),
 * or -1 when nothing could be read without blocking (always, on the pure backend). The caller reads
 * the rest through the thread pool.
 */
export function readNow(fd: number, target: Uint8Array, at: number, length: number, position: number): number {
  return addon ? addon.readNoWait(fd, target, at, length, position) : -1;
}

/**
 * Asks for a socket send buffer of `bytes` (Linux doubles the request and caps it at twice
 * net.core.wmem_max): the size in effect, or null on the pure backend, where Node offers no way
 * to set it on a stream socket.
 */
export function setSendBuffer(fd: number, bytes: number): number | null {
  return addon ? addon.setSendBuffer(fd, bytes) : null;
}

/**
 * SHA-256 of each whole `chunkSize` piece of `data` (32 bytes each, in order), computed on the thread
 * pool; `data` must stay unchanged until the promise settles. Null on the pure backend: hash inline.
 */
export const hashChunksOffThread: ((data: Buffer, chunkSize: number) => Promise<Buffer>) | null = addon
  ? (data, chunkSize) => addon.sha256Chunks(data, chunkSize)
  : null;

/** One positional write of a batch: resolved with the record checksum when asked for (else 0), or rejected with its errno error. */
export type BatchWriteOutcome = { ok: true; checksum: number } | { ok: false; error: NodeJS.ErrnoException };

/**
 * pwrite of each buffer at its position, all in one thread-pool job, and with `withChecksums` the
 * upper's record checksum of each (lib/device/upper/data-checksum.ts, computed there too). The
 * buffers must stay unchanged until the promise settles. Null on the pure backend: write one by one.
 */
export const writeBatchOffThread: ((fd: number, buffers: Uint8Array[], positions: number[], withChecksums: boolean) => Promise<BatchWriteOutcome[]>) | null = addon
  ? async (fd, buffers, positions, withChecksums) => {
      const checksums = new Uint32Array(withChecksums ? buffers.length : 0);
      const errors = new Int32Array(buffers.length);
      await addon.writeBatch(fd, buffers, Float64Array.from(positions), checksums, errors);
      return buffers.map((_, i): BatchWriteOutcome => {
        const errno = errors[i]!;
        if (errno === 0) return { ok: true, checksum: withChecksums ? checksums[i]! : 0 };
        const code = getSystemErrorName(-errno);
        return { ok: false, error: Object.assign(new Error(`${code}: write failed, pwrite`), { errno: -errno, code, syscall: 'pwrite' }) };
      });
    }
  : null;
