import { read } from 'node:fs';
import { readNow } from './native-io.js';

/**
 * Reads up to this many bytes on the main thread when the page cache has them (native backend):
 * a hit then costs one syscall instead of a thread-pool round trip. Larger reads go to the pool,
 * where their copying runs beside the main thread instead of on it.
 */
export const READ_NOW_MAX = 128 * 1024;

/**
 * Reads up to `length` bytes at `position` of an open fd into target[at…], looping over
 * short reads; resolves with the count read (less only at end of file). Page-cache hits are
 * read at once (RWF_NOWAIT); what is not cached goes through the thread pool, so a cold page
 * never blocks the event loop. The callback fs API costs measurably less per call than
 * FileHandle.read on hot read paths.
 */
export function readAt(fd: number, target: Buffer, at: number, length: number, position: number): Promise<number> {
  let now: number;
  try {
    now = length <= READ_NOW_MAX ? readNow(fd, target, at, length, position) : -1;
  } catch (e) {
    return Promise.reject(e);
  }
  if (now === length || now === 0) return Promise.resolve(now);
  return new Promise((resolve, reject) => {
    const step = (done: number): void => {
      if (done === length) return resolve(done);
      read(fd, target, at + done, length - done, position + done, (err, bytesRead) => {
        if (err) return reject(err);
        if (bytesRead === 0) return resolve(done);
        step(done + bytesRead);
      });
    };
    step(Math.max(now, 0));
  });
}
