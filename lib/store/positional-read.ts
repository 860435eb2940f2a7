import { read } from 'node:fs';

/**
 * Reads up to `length` bytes at `position` of an open fd into target[at…], looping over
 * short reads; resolves with the count read (less only at end of file). The callback
 * fs API costs measurably less per call than FileHandle.read on hot read paths.
 */
export function readAt(fd: number, target: Buffer, at: number, length: number, position: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const step = (done: number): void => {
      if (done === length) return resolve(done);
      read(fd, target, at + done, length - done, position + done, (err, bytesRead) => {
        if (err) return reject(err);
        if (bytesRead === 0) return resolve(done);
        step(done + bytesRead);
      });
    };
    step(0);
  });
}
