import { read, write } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { UpperError } from './errors.js';

// The hot paths use the callback fs API on the handle's fd: markedly cheaper per
// call than FileHandle's promise methods (see lib/device/raw-file-device.ts).

/** Exactly `length` bytes; the upper's files never end early, so a short file is corruption. */
export function readFully(fd: FileHandle, into: Buffer, at: number, length: number, position: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const step = (done: number): void => {
      if (done === length) return resolve();
      read(fd.fd, into, at + done, length - done, position + done, (err, bytesRead) => {
        if (err) return reject(err);
        if (bytesRead === 0) return reject(new UpperError('E_UPPER_CORRUPT', `unexpected end of file at ${position + done}`));
        step(done + bytesRead);
      });
    };
    step(0);
  });
}

/** Positional write of all of `data` (a single write may be partial). */
export function writeFully(fd: FileHandle, data: Buffer, position: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const step = (done: number): void => {
      if (done === data.length) return resolve();
      write(fd.fd, data, done, data.length - done, position + done, (err, bytesWritten) => {
        if (err) return reject(err);
        step(done + bytesWritten);
      });
    };
    step(0);
  });
}

/** fsync of a directory, so a rename or a new entry in it survives a crash. */
export async function syncDirectory(dir: string): Promise<void> {
  const fd = await open(dir, 'r');
  try {
    await fd.sync();
  } finally {
    await fd.close();
  }
}
