import { read, write } from 'node:fs';
import { mkdir, type FileHandle } from 'node:fs/promises';
import { dirname, relative, resolve, sep } from 'node:path';
import { fsyncDir } from '../../store/fsync-dir.js';
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

/** mkdir -p whose new entries survive a crash: every directory that gained one is synced. */
export async function makeDirectoryDurably(dir: string): Promise<void> {
  const first = await mkdir(dir, { recursive: true });
  if (first === undefined) return;
  const top = dirname(resolve(first));
  await fsyncDir(top);
  let at = top;
  for (const part of relative(top, resolve(dir)).split(sep)) {
    at = resolve(at, part);
    await fsyncDir(at);
  }
}
