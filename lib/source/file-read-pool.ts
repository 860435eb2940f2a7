import { close, open, read } from 'node:fs';
import { readNow } from '../store/native-io.js';
import { READ_NOW_MAX } from '../store/positional-read.js';

interface OpenFile {
  fd: number;
  /** Reads in progress on fd: it may only be closed at zero, or a reused fd number could be read. */
  users: number;
  /** Forgotten or pushed out of the pool while in use: close when the last user is done. */
  retired: boolean;
}

/**
 * Positional reads of many small files, keeping up to `capacity` descriptors open so that
 * a repeated read costs one pread instead of open + pread + close (three thread-pool round
 * trips). Capacity 0 opens and closes for every read. The oldest-opened descriptor goes
 * first: reordering on every hit would cost more than the rare reopen it saves.
 * Uses the callback fs API: markedly cheaper per call than FileHandle's promises.
 */
export class FileReadPool {
  /** Map order is open order, oldest first. */
  private readonly files = new Map<string, OpenFile>();
  private readonly opening = new Map<string, { file: Promise<OpenFile>; stale: boolean }>();

  /** `pathOf` names the file of a key; it is only called when the file has to be opened. */
  constructor(
    private readonly capacity: number,
    private readonly pathOf: (key: string) => string,
  ) {}

  /** Bytes read (fewer than `length` only at end of file). Rejects with the fs error (ENOENT …). */
  read(key: string, into: Buffer, at: number, length: number, position: number): Promise<number> {
    const file = this.files.get(key);
    if (file) return readFrom(file, into, at, length, position);
    return this.open(key).then((opened) => readFrom(opened, into, at, length, position));
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

  private open(key: string): Promise<OpenFile> {
    const pending = this.opening.get(key);
    if (pending) return pending.file;
    const state = { file: undefined as unknown as Promise<OpenFile>, stale: false };
    state.file = new Promise<OpenFile>((resolve, reject) => {
      const path = this.pathOf(key);
      open(path, 'r', (err, fd) => {
        // Out of descriptors (a low ulimit, many clients): give back ours and try once more.
        if (err?.code === 'EMFILE' && this.files.size > 0) {
          this.closeAll();
          return open(path, 'r', (again, fd2) => opened(again, fd2));
        }
        opened(err, fd);
      });
      const opened = (err: NodeJS.ErrnoException | null, fd: number): void => {
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
      };
    });
    this.opening.set(key, state);
    return state.file;
  }

  private retire(file: OpenFile): void {
    file.retired = true;
    if (file.users === 0) close(file.fd, noop);
  }
}

/**
 * Reads until `length` bytes or end of file; closes a retired descriptor after its last read.
 * Page-cache hits on a kept descriptor are read at once, the rest through the thread pool (as readAt does).
 */
function readFrom(file: OpenFile, into: Buffer, at: number, length: number, position: number): Promise<number> {
  let now: number;
  try {
    // A retired descriptor (capacity 0, or forgotten meanwhile) is closed by its last pool read; reads
    // waiting on the same open may still follow, so it never takes the shortcut.
    now = length <= READ_NOW_MAX && !file.retired ? readNow(file.fd, into, at, length, position) : -1;
  } catch (e) {
    return Promise.reject(e);
  }
  if (now === length || now === 0) return Promise.resolve(now);
  file.users++;
  return new Promise((resolve, reject) => {
    const step = (done: number): void => {
      read(file.fd, into, at + done, length - done, position + done, (err, n) => {
        if (!err && n > 0 && done + n < length) return step(done + n);
        if (--file.users === 0 && file.retired) close(file.fd, noop);
        if (err) reject(err);
        else resolve(done + n);
      });
    };
    step(Math.max(now, 0));
  });
}

function noop(): void {}
