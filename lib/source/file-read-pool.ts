import { close, open, read } from 'node:fs';

interface OpenFile {
  fd: number;
  /** Reads in progress on fd: it may only be closed at zero, or a reused fd number could be read. */
  users: number;
  /** Forgotten or pushed out of the pool while in use: close when the last user is done. */
  retired: boolean;
}

/**
 * Positional reads of many small files, keeping up to `capacity` descriptors open in LRU
 * order so that a repeated read costs one pread instead of open + pread + close (three
 * thread-pool round trips). Capacity 0 opens and closes for every read.
 * Uses the callback fs API: markedly cheaper per call than FileHandle's promises.
 */
export class FileReadPool {
  /** Map order is use order, oldest first. */
  private readonly files = new Map<string, OpenFile>();
  private readonly opening = new Map<string, { file: Promise<OpenFile>; stale: boolean }>();

  constructor(private readonly capacity: number) {}

  /** Bytes read (fewer than `length` only at end of file). Rejects with the fs error (ENOENT …). */
  async read(key: string, path: string, into: Buffer, at: number, length: number, position: number): Promise<number> {
    let file = this.files.get(key);
    if (file) {
      this.files.delete(key);
      this.files.set(key, file);
    } else {
      file = await this.open(key, path);
    }
    file.users++;
    try {
      return await readAll(file.fd, into, at, length, position);
    } finally {
      file.users--;
      if (file.retired && file.users === 0) close(file.fd, noop);
    }
  }

  /** Drops the descriptor of `key` (the file is being deleted or replaced). */
  forget(key: string): void {
    const pending = this.opening.get(key);
    if (pending) {
      pending.stale = true;
      this.opening.delete(key);
    }
    const file = this.files.get(key);
    if (!file) return;
    this.files.delete(key);
    this.retire(file);
  }

  closeAll(): void {
    for (const file of this.files.values()) this.retire(file);
    this.files.clear();
  }

  private open(key: string, path: string): Promise<OpenFile> {
    const pending = this.opening.get(key);
    if (pending) return pending.file;
    const state = { file: undefined as unknown as Promise<OpenFile>, stale: false };
    state.file = new Promise<OpenFile>((resolve, reject) => {
      open(path, 'r', (err, fd) => {
        if (!state.stale) this.opening.delete(key);
        if (err) return reject(err);
        // Opened before a forget(): serve the read that asked for it, keep nothing.
        const keep = this.capacity > 0 && !state.stale;
        const file: OpenFile = { fd, users: 0, retired: !keep };
        if (keep) {
          this.files.set(key, file);
          if (this.files.size > this.capacity) this.forget(this.files.keys().next().value!);
        }
        resolve(file);
      });
    });
    this.opening.set(key, state);
    return state.file;
  }

  private retire(file: OpenFile): void {
    file.retired = true;
    if (file.users === 0) close(file.fd, noop);
  }
}

function readAll(fd: number, into: Buffer, at: number, length: number, position: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const step = (done: number): void => {
      read(fd, into, at + done, length - done, position + done, (err, n) => {
        if (err) return reject(err);
        done += n;
        if (n === 0 || done === length) return resolve(done);
        step(done);
      });
    };
    step(0);
  });
}

function noop(): void {}
