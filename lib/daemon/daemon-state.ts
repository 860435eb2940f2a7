import { mkdir, readFile, readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { LazybdError } from '../errors.js';
import { writeFileDurably } from '../store/atomic-file.js';
import { lockDir } from './dir-lock.js';

/** A clone: an export with its own upper under the state directory. */
export interface CloneRecord {
  name: string;
  /** Store ref of the image cloned, and the manifest it named then (the upper is bound to it). */
  image: string;
  manifestDigest: string;
  createdAt: string;
}

/** An image export added at run time (`exports add`), served again after a restart. */
export interface ExportRecord {
  name: string;
  image: string;
}

interface StateFile {
  version: 1;
  clones: CloneRecord[];
  exports: ExportRecord[];
}

const STATE_FILE = 'state.json';
const UPPERS = 'uppers';
const KEPT = 'kept';

export class DaemonStateError extends LazybdError {
  constructor(code: 'E_STATE_CORRUPT' | 'E_CLONE_NAME_INVALID', message: string) {
    super(code, message, { exitStatus: code === 'E_STATE_CORRUPT' ? 3 : 2 });
  }
}

/** Names end up as directory names and in NBD URIs: plain ones only. */
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export function checkCloneName(name: string): void {
  if (!NAME.test(name)) throw new DaemonStateError('E_CLONE_NAME_INVALID', `clone name ${JSON.stringify(name)} must be 1-128 of A-Z a-z 0-9 . _ - and start with a letter or digit`);
}

/**
 * What a daemon adds at run time, kept in its state directory so a restarted host gets its
 * VMs' disks back: `state.json` (written durably before any change is reported) and one
 * upper per clone in `uppers/NAME`. Order of changes makes a crash at any point safe: an
 * upper is created before its record and deleted after its record is gone, so an upper
 * without a record is debris, swept at open; a kept upper is moved away before its record
 * goes, so a record without an upper is dropped at open (listed in `dropped`), never
 * restored as an empty disk. One daemon owns the directory at a time.
 */
export class DaemonState {
  private constructor(
    readonly dir: string,
    private state: StateFile,
    private readonly unlock: () => Promise<void>,
    /** Clones whose upper was gone at open (a crash during `clone rm --keep`). */
    readonly dropped: readonly string[],
  ) {}

  static async open(dir: string): Promise<DaemonState> {
    const unlock = await lockDir(dir, 'E_STATE_IN_USE', 'daemon state directory');
    try {
      const state = await readState(join(dir, STATE_FILE));
      await mkdir(join(dir, UPPERS), { recursive: true, mode: 0o700 });
      const uppers = new Set(await readdir(join(dir, UPPERS)));
      const known = new Set(state.clones.map((c) => c.name));
      for (const entry of uppers) if (!known.has(entry)) await rm(join(dir, UPPERS, entry), { recursive: true, force: true });
      const dropped = state.clones.filter((c) => !uppers.has(c.name)).map((c) => c.name);
      const daemonState = new DaemonState(dir, state, unlock, dropped);
      if (dropped.length) await daemonState.save({ ...state, clones: state.clones.filter((c) => uppers.has(c.name)) });
      return daemonState;
    } catch (e) {
      await unlock();
      throw e;
    }
  }

  /** Whether `dir` holds state a daemon should load at start. */
  static async exists(dir: string): Promise<boolean> {
    return stat(join(dir, STATE_FILE)).then(
      () => true,
      () => false,
    );
  }

  get clones(): readonly CloneRecord[] {
    return this.state.clones;
  }

  get exports(): readonly ExportRecord[] {
    return this.state.exports;
  }

  upperDir(name: string): string {
    return join(this.dir, UPPERS, name);
  }

  async addClone(record: CloneRecord): Promise<void> {
    await this.save({ ...this.state, clones: [...this.state.clones, record] });
  }

  /** Forgets the clone and deletes its upper, or with `keep` moves the upper to `kept/` first and returns where. */
  async removeClone(name: string, keep: boolean): Promise<string | undefined> {
    const forget = () => this.save({ ...this.state, clones: this.state.clones.filter((c) => c.name !== name) });
    if (!keep) {
      await forget();
      await rm(this.upperDir(name), { recursive: true, force: true });
      return undefined;
    }
    await mkdir(join(this.dir, KEPT), { recursive: true, mode: 0o700 });
    const kept = join(this.dir, KEPT, `${name}-${new Date().toISOString().replace(/[:.]/g, '')}`);
    await rename(this.upperDir(name), kept);
    await forget();
    return kept;
  }

  async addExport(record: ExportRecord): Promise<void> {
    await this.save({ ...this.state, exports: [...this.state.exports, record] });
  }

  async removeExport(name: string): Promise<void> {
    await this.save({ ...this.state, exports: this.state.exports.filter((e) => e.name !== name) });
  }

  close(): Promise<void> {
    return this.unlock();
  }

  private async save(next: StateFile): Promise<void> {
    await writeFileDurably(join(this.dir, STATE_FILE), JSON.stringify(next, null, 2) + '\n');
    this.state = next;
  }
}

/** Where a daemon keeps its clones without --state-dir: in the store it serves from. */
export function defaultStateDir(storeDir: string): string {
  return join(storeDir, 'daemon');
}

/** The clones kept in a state directory, read without taking it (its daemon may be running or not). */
export async function clonesIn(dir: string): Promise<CloneRecord[]> {
  return (await readState(join(dir, STATE_FILE))).clones;
}

async function readState(path: string): Promise<StateFile> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { version: 1, clones: [], exports: [] };
    throw e;
  }
  let s: Partial<StateFile>;
  try {
    s = JSON.parse(text) as Partial<StateFile>;
  } catch {
    throw new DaemonStateError('E_STATE_CORRUPT', `${path} is not JSON`);
  }
  if (s.version !== 1 || !Array.isArray(s.clones) || !Array.isArray(s.exports)) throw new DaemonStateError('E_STATE_CORRUPT', `${path} is not a lazybd daemon state (version 1)`);
  for (const c of s.clones) if (typeof c?.name !== 'string' || typeof c.image !== 'string' || typeof c.manifestDigest !== 'string') throw new DaemonStateError('E_STATE_CORRUPT', `${path}: a clone record lacks name, image or manifestDigest`);
  for (const e of s.exports) if (typeof e?.name !== 'string' || typeof e.image !== 'string') throw new DaemonStateError('E_STATE_CORRUPT', `${path}: an export record lacks name or image`);
  return s as StateFile;
}
