import { createHash } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { HEADER_SIZE, MEDIA_TYPE_LAYER, TRAILER_MAGIC, TRAILER_SIZE } from '../format/layer-spec.js';
import { decodeTrailer } from '../format/trailer.js';
import { metaLocationOf } from '../image/layer-descriptor.js';
import { supernodeUpstreamRequests } from '../metrics/metrics.js';
import { parseManifest, type Descriptor } from '../oci/manifest.js';
import type { ChunkCache } from '../source/chunk-cache.js';
import type { SourceLogger } from '../source/source-logger.js';
import { writeFileAtomic } from '../store/atomic-file.js';
import { PIECE_SIZE, decodeLayout, encodeLayout, layerBlobLayout, wholeBlobLayout, type BlobLayout } from './blob-layout.js';
import type { Upstream } from './upstreams.js';

/**
 * What the supernode knows of each blob's layout (see BlobLayout), learnt once per blob
 * and kept on disk (`layouts/<hex>.json`), so a restart serves cached chunks without the
 * registry. A lazybd layer is recognised from the manifest that named it (its annotations
 * also locate the metadata: one Range request) or, for a blob asked for before any
 * manifest, from its trailer. Concurrent first requests for a blob share one learning.
 */
export class BlobCatalog {
  private readonly layouts = new Map<string, BlobLayout>();
  private readonly learning = new Map<string, Promise<BlobLayout>>();
  /** Descriptors from manifests served: size, media type and metadata location of blobs not yet learnt. */
  private readonly hints = new Map<string, Descriptor>();

  private constructor(
    private readonly dir: string,
    private readonly cache: ChunkCache,
    private readonly log: SourceLogger,
  ) {}

  static async open(dir: string, cache: ChunkCache, log: SourceLogger): Promise<BlobCatalog> {
    await mkdir(dir, { recursive: true });
    return new BlobCatalog(dir, cache, log);
  }

  /** Remembers the blobs an image manifest names (anything else passes unremarked). */
  noteManifest(bytes: Buffer): void {
    let descriptors: Descriptor[];
    try {
      const m = parseManifest(bytes);
      descriptors = [m.config, ...m.layers];
    } catch {
      return;
    }
    for (const d of descriptors) if (!this.hints.has(d.digest)) this.hints.set(d.digest, d);
  }

  /** The blob's size, learning as little as possible: known layout, a manifest's descriptor, else a HEAD. */
  async size(upstream: Upstream, repository: string, digest: string): Promise<number> {
    const known = this.layouts.get(digest) ?? (await this.fromDisk(digest));
    return known ? known.size : this.remoteSize(upstream, repository, digest);
  }

  /** A manifest's word for the size, else the registry's (HEAD). */
  private async remoteSize(upstream: Upstream, repository: string, digest: string): Promise<number> {
    const hinted = this.hints.get(digest)?.size;
    if (hinted !== undefined) return hinted;
    supernodeUpstreamRequests.inc({ kind: 'head' });
    return (await upstream.client.headBlob(repository, digest)).size;
  }

  layout(upstream: Upstream, repository: string, digest: string): Promise<BlobLayout> {
    const known = this.layouts.get(digest);
    if (known) return Promise.resolve(known);
    let pending = this.learning.get(digest);
    if (!pending) {
      pending = this.find(upstream, repository, digest).finally(() => this.learning.delete(digest));
      this.learning.set(digest, pending);
    }
    return pending;
  }

  private async find(upstream: Upstream, repository: string, digest: string): Promise<BlobLayout> {
    const layout = (await this.fromDisk(digest)) ?? (await this.learn(upstream, repository, digest));
    this.layouts.set(digest, layout);
    return layout;
  }

  private async fromDisk(digest: string): Promise<BlobLayout | undefined> {
    const text = await readFile(this.path(digest), 'utf8').catch(() => undefined);
    const layout = text === undefined ? undefined : await decodeLayout(text, digest);
    if (text !== undefined && !layout) this.log.warn(`supernode: layout of ${digest} on disk is unreadable; learning it again`);
    return layout;
  }

  private async learn(upstream: Upstream, repository: string, digest: string): Promise<BlobLayout> {
    const hint = this.hints.get(digest);
    // find() has looked in memory and on disk already.
    const size = await this.remoteSize(upstream, repository, digest);
    const layout = (await this.learnLayer(upstream, repository, digest, size, hint)) ?? (await this.download(upstream, repository, digest, size));
    await writeFileAtomic(this.path(digest), encodeLayout(layout));
    return layout;
  }

  /** The layout of a lazybd layer, or undefined when the blob is not one. */
  private async learnLayer(upstream: Upstream, repository: string, digest: string, size: number, hint: Descriptor | undefined): Promise<BlobLayout | undefined> {
    if (size < HEADER_SIZE + TRAILER_SIZE || (hint && hint.mediaType !== MEDIA_TYPE_LAYER)) return undefined;
    const range = (offset: number, length: number) => {
      supernodeUpstreamRequests.inc({ kind: 'meta' });
      return upstream.client.readBlobRange(repository, digest, offset, length);
    };
    let meta = hint && metaLocationOf(hint);
    if (!meta || meta.offset + meta.length !== size) {
      const trailer = await range(size - TRAILER_SIZE, TRAILER_SIZE);
      if (!trailer.subarray(0, TRAILER_MAGIC.length).equals(TRAILER_MAGIC)) return undefined;
      const offset = decodeTrailer(trailer).indexOffset;
      meta = { offset, length: size - offset };
    }
    const [header, tail] = await Promise.all([range(0, HEADER_SIZE), range(meta.offset, meta.length)]);
    return layerBlobLayout(digest, size, header, tail);
  }

  /** Downloads a blob whole (checked against its digest), keeping it as pieces in the chunk cache. */
  private async download(upstream: Upstream, repository: string, digest: string, size: number): Promise<BlobLayout> {
    const digests: Buffer[] = [];
    const cache = this.cache;
    let piece: Buffer[] = [];
    let filled = 0;
    const flush = async (): Promise<void> => {
      const bytes = Buffer.concat(piece, filled);
      piece = [];
      filled = 0;
      const d = createHash('sha256').update(bytes).digest();
      digests.push(d);
      await cache.put(d.toString('hex'), bytes);
    };
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        (async () => {
          for (let at = 0; at < chunk.length; ) {
            const n = Math.min(PIECE_SIZE - filled, chunk.length - at);
            piece.push(chunk.subarray(at, at + n));
            filled += n;
            at += n;
            if (filled === PIECE_SIZE) await flush();
          }
        })().then(() => done(), done);
      },
      final(done) {
        (filled > 0 ? flush() : Promise.resolve()).then(() => done(), done);
      },
    });
    supernodeUpstreamRequests.inc({ kind: 'blob' });
    await upstream.client.getBlob(repository, { digest, size }, sink);
    return wholeBlobLayout(digest, size, Buffer.concat(digests));
  }

  private path(digest: string): string {
    return join(this.dir, `${digest.slice('sha256:'.length)}.json`);
  }
}
