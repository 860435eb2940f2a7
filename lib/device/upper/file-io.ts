import { open, type FileHandle } from 'node:fs/promises';
import { UpperError } from './errors.js';

/** fsync of a directory, so a rename or a new entry in it survives a crash. */
export async function syncDirectory(dir: string): Promise<void> {
  const fd = await open(dir, 'r');
  try {
    await fd.sync();
  } finally {
    await fd.close();
  }
}

/** Exactly `length` bytes; the upper's files never end early, so a short file is corruption. */
export async function readFully(fd: FileHandle, into: Buffer, at: number, length: number, position: number): Promise<void> {
  for (let done = 0; done < length; ) {
    const { bytesRead } = await fd.read(into, at + done, length - done, position + done);
    if (bytesRead === 0) throw new UpperError('E_UPPER_CORRUPT', `unexpected end of file at ${position + done}`);
    done += bytesRead;
  }
}

/** Positional write of all of `data` (a single write may be partial). */
export async function writeFully(fd: FileHandle, data: Buffer, position: number): Promise<void> {
  for (let done = 0; done < data.length; ) {
    const { bytesWritten } = await fd.write(data, done, data.length - done, position + done);
    done += bytesWritten;
  }
}
