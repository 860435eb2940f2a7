import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import {
  ANNOTATION_REF_NAME,
  MEDIA_TYPE_OCI_INDEX,
  parseManifest,
  type Descriptor,
  type ImageIndex,
  type ImageManifest,
} from '../oci/manifest.js';
import { BlobWriter } from './blob-writer.js';
import { BlobNotFoundError, ImageNotFoundError, StoreCorruptError } from './errors.js';
import { FileRandomAccess } from './file-random-access.js';
import { writeFileDurably } from './atomic-file.js';
import { isProcessAlive } from './process-alive.js';
import { withLock } from './store-lock.js';

/** `--store` beats `$LAZYBD_STORE` beats `$XDG_DATA_HOME/lazybd` beats `~/.local/share/lazybd`. */
export function defaultStoreDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.LAZYBD_STORE) return env.LAZYBD_STORE;
  return join(env.XDG_DATA_HOME || join(homedir(), '.local', 'share'), 'lazybd');
}

export interface TaggedImage {
  ref: string;
  descriptor: Descriptor;
}

/**
 * The local image store: an OCI image layout directory (oci-layout, index.json,
 * blobs/sha256/…), readable by skopeo and other OCI tools. Blobs are immutable and
 * written atomically; index.json changes happen under a lock, by atomic replace.
 */
export class OciStore {
  readonly blobDir: string;
  private readonly tempDir: string;
  private readonly leaseDir: string;
  private readonly metaDir: string;
  private readonly indexPath: string;

  private constructor(readonly dir: string) {
    this.blobDir = join(dir, 'blobs', 'sha256');
    this.tempDir = join(dir, 'tmp');
    this.leaseDir = join(dir, 'leases');
    this.metaDir = join(dir, 'layer-meta');
    this.indexPath = join(dir, 'index.json');
  }

  static async open(dir: string): Promise<OciStore> {
    const store = new OciStore(dir);
    await mkdir(store.blobDir, { recursive: true });
    await mkdir(store.tempDir, { recursive: true });
    await mkdir(store.leaseDir, { recursive: true });
    await mkdir(store.metaDir, { recursive: true });
    const layout = join(dir, 'oci-layout');
    if (!(await exists(layout))) await store.writeAtomic(layout, JSON.stringify({ imageLayoutVersion: '1.0.0' }));
    if (!(await exists(store.indexPath))) {
      await store.locked(async () => {
        if (!(await exists(store.indexPath))) await store.writeIndex({ schemaVersion: 2, mediaType: MEDIA_TYPE_OCI_INDEX, manifests: [] });
      });
    }
    return store;
  }

  blobPath(digest: string): string {
    const [algo, hex] = digest.split(':');
    if (algo !== 'sha256' || !/^[a-f0-9]{64}$/.test(hex ?? '')) throw new StoreCorruptError(`invalid digest ${digest}`);
    return join(this.blobDir, hex!);
  }

  async hasBlob(digest: string): Promise<boolean> {
    return exists(this.blobPath(digest));
  }

  /** A writer for a new blob; pair with `lease()` so a concurrent `rm` never collects it before it is tagged. */
  newBlob(): Promise<BlobWriter> {
    return BlobWriter.create(this.tempDir, this.blobDir);
  }

  /** A fresh path in the store's temp dir (same file system as the blobs), not yet created. */
  tempPath(prefix: string): string {
    return join(this.tempDir, `${prefix}-${process.pid}-${randomBytes(6).toString('hex')}`);
  }

  async putBlob(bytes: Buffer): Promise<{ digest: string; size: number }> {
    const w = await this.newBlob();
    try {
      await w.write(bytes);
      return await w.commit();
    } catch (e) {
      await w.abort();
      throw e;
    }
  }

  /** Reads a small blob whole (manifests, configs), checking it against its digest. */
  async readBlob(digest: string): Promise<Buffer> {
    const bytes = await readFile(this.blobPath(digest)).catch((e: NodeJS.ErrnoException) => {
      throw e.code === 'ENOENT' ? new BlobNotFoundError(digest) : e;
    });
    if (`sha256:${createHash('sha256').update(bytes).digest('hex')}` !== digest) throw new StoreCorruptError(`blob ${digest} does not match its digest`);
    return bytes;
  }

  async openBlob(digest: string): Promise<FileRandomAccess> {
    return FileRandomAccess.open(this.blobPath(digest)).catch((e: NodeJS.ErrnoException) => {
      throw e.code === 'ENOENT' ? new BlobNotFoundError(digest) : e;
    });
  }

  /**
   * Marks a write in progress: while any lease of a live process exists, garbage
   * collection spares every blob written since that lease began.
   */
  async lease<T>(fn: () => Promise<T>): Promise<T> {
    const path = join(this.leaseDir, `${process.pid}-${randomBytes(6).toString('hex')}`);
    await writeFile(path, String(process.pid));
    try {
      return await fn();
    } finally {
      await rm(path, { force: true });
    }
  }

  /**
   * A lazily pulled layer keeps only its metadata (extent index, chunk table, trailer:
   * the tail of the blob from the meta offset) here, beside the OCI layout, until its
   * blob is complete.
   */
  async putLayerMeta(layerDigest: string, bytes: Buffer): Promise<void> {
    await this.writeAtomic(this.layerMetaPath(layerDigest), bytes);
  }

  async readLayerMeta(layerDigest: string): Promise<Buffer | undefined> {
    return readFile(this.layerMetaPath(layerDigest)).catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') return undefined;
      throw e;
    });
  }

  private layerMetaPath(layerDigest: string): string {
    return join(this.metaDir, this.blobPath(layerDigest).slice(this.blobDir.length + 1));
  }

  async list(): Promise<TaggedImage[]> {
    const index = await this.readIndex();
    return index.manifests
      .filter((d) => d.annotations?.[ANNOTATION_REF_NAME])
      .map((d) => ({ ref: d.annotations![ANNOTATION_REF_NAME]!, descriptor: d }));
  }

  async resolve(ref: string): Promise<{ descriptor: Descriptor; manifest: ImageManifest }> {
    const found = (await this.list()).find((t) => t.ref === ref);
    if (!found) throw new ImageNotFoundError(ref);
    return { descriptor: found.descriptor, manifest: parseManifest(await this.readBlob(found.descriptor.digest)) };
  }

  /** Points `ref` at a manifest already in the store (replacing what it pointed at), with extra annotations. */
  async tag(ref: string, manifest: Descriptor, annotations: Record<string, string> = {}): Promise<void> {
    await this.locked(async () => {
      const index = await this.readIndex();
      index.manifests = index.manifests.filter((d) => d.annotations?.[ANNOTATION_REF_NAME] !== ref);
      index.manifests.push({ ...manifest, annotations: { ...manifest.annotations, ...annotations, [ANNOTATION_REF_NAME]: ref } });
      await this.writeIndex(index);
    });
  }

  /** Untags `ref` and deletes the blobs no remaining image uses. Returns the bytes freed. */
  async remove(ref: string): Promise<number> {
    return this.locked(async () => {
      const index = await this.readIndex();
      const kept = index.manifests.filter((d) => d.annotations?.[ANNOTATION_REF_NAME] !== ref);
      if (kept.length === index.manifests.length) throw new ImageNotFoundError(ref);
      index.manifests = kept;
      await this.writeIndex(index);
      return this.collectGarbage(index);
    });
  }

  private async collectGarbage(index: ImageIndex): Promise<number> {
    const live = new Set<string>();
    for (const d of index.manifests) {
      live.add(d.digest);
      const m = parseManifest(await this.readBlob(d.digest));
      live.add(m.config.digest);
      for (const l of m.layers) live.add(l.digest);
    }
    const spareSince = await this.oldestLiveLease();
    let freed = 0;
    for (const dir of [this.blobDir, this.metaDir]) {
      for (const hex of await readdir(dir)) {
        if (live.has(`sha256:${hex}`)) continue;
        const path = join(dir, hex);
        const st = await stat(path).catch(() => null);
        if (!st || st.mtimeMs >= spareSince) continue;
        await rm(path, { force: true });
        freed += st.size;
      }
    }
    return freed;
  }

  private async oldestLiveLease(): Promise<number> {
    let oldest = Infinity;
    for (const name of await readdir(this.leaseDir)) {
      const pid = Number(name.split('-')[0]);
      const path = join(this.leaseDir, name);
      if (!isProcessAlive(pid)) {
        await rm(path, { force: true });
        continue;
      }
      const st = await stat(path).catch(() => null);
      // A little slack: file system timestamps can be coarser than the clock.
      if (st) oldest = Math.min(oldest, st.mtimeMs - 2000);
    }
    return oldest;
  }

  private locked<T>(fn: () => Promise<T>): Promise<T> {
    return withLock(join(this.dir, 'index.json.lock'), fn);
  }

  private async readIndex(): Promise<ImageIndex> {
    let index: ImageIndex;
    try {
      index = JSON.parse(await readFile(this.indexPath, 'utf8'));
    } catch (e) {
      throw new StoreCorruptError(`cannot read ${this.indexPath}: ${(e as Error).message}`);
    }
    if (!Array.isArray(index?.manifests)) throw new StoreCorruptError(`${this.indexPath} has no manifests array`);
    return index;
  }

  private writeIndex(index: ImageIndex): Promise<void> {
    return this.writeAtomic(this.indexPath, JSON.stringify(index, null, 2) + '\n');
  }

  private writeAtomic(path: string, text: string | Buffer): Promise<void> {
    return writeFileDurably(path, text, join(this.tempDir, `meta-${process.pid}-${randomBytes(6).toString('hex')}`));
  }

}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}
