import { createHash } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isRetryable } from '../registry/errors.js';
import type { Manifest, RegistryClient } from '../registry/registry-client.js';
import { sha256Digest } from '../registry/content-digest.js';
import { writeFileAtomic } from '../store/atomic-file.js';
import { supernodeStaleManifests, supernodeUpstreamRequests } from '../metrics/metrics.js';
import type { SourceLogger } from '../source/source-logger.js';

export interface ManifestCacheOptions {
  /** How long a tag is served from the cache before the registry is asked again. */
  ttlMs: number;
  log: SourceLogger;
}

interface TagEntry {
  digest: string;
  fetchedAt: number;
}

const DIGEST = /^sha256:[0-9a-f]{64}$/;

/**
 * Manifests on the supernode's disk: bytes by digest (`sha256/<hex>`, checked against the
 * name when read, media type beside them), tags as `tags/<hash of ns/repo:tag>.json`
 * pointing at a digest. A tag is re-resolved at the registry once its TTL has passed; if
 * the registry cannot be reached then, the cached manifest is served (so a preheated image
 * starts with the registry gone). Manifests by digest never expire.
 */
export class ManifestCache {
  private readonly inflight = new Map<string, Promise<Manifest>>();

  private constructor(
    private readonly dir: string,
    private readonly options: ManifestCacheOptions,
  ) {}

  static async open(dir: string, options: ManifestCacheOptions): Promise<ManifestCache> {
    await mkdir(join(dir, 'sha256'), { recursive: true });
    await mkdir(join(dir, 'tags'), { recursive: true });
    return new ManifestCache(dir, options);
  }

  /** The manifest `reference` (tag or digest) names in `repository` of the upstream `ns`. Concurrent asks share one registry request. */
  get(ns: string, client: RegistryClient, repository: string, reference: string): Promise<Manifest> {
    const key = `${ns}/${repository}:${reference}`;
    let pending = this.inflight.get(key);
    if (!pending) {
      pending = this.resolve(key, client, repository, reference).finally(() => this.inflight.delete(key));
      this.inflight.set(key, pending);
    }
    return pending;
  }

  private async resolve(key: string, client: RegistryClient, repository: string, reference: string): Promise<Manifest> {
    if (DIGEST.test(reference)) {
      const cached = await this.read(reference);
      if (cached) return cached;
      supernodeUpstreamRequests.inc({ kind: 'manifest' });
      return this.store(await client.getManifest(repository, reference));
    }
    const tagPath = join(this.dir, 'tags', `${createHash('sha256').update(key).digest('hex')}.json`);
    const tag = await readJson<TagEntry>(tagPath);
    const cached = tag && (await this.read(tag.digest));
    if (cached && Date.now() - tag.fetchedAt < this.options.ttlMs) return cached;
    let fresh: Manifest;
    try {
      supernodeUpstreamRequests.inc({ kind: 'manifest' });
      fresh = await client.getManifest(repository, reference);
    } catch (e) {
      if (!cached || !isRetryable(e)) throw e;
      supernodeStaleManifests.inc();
      this.options.log.warn(`${key}: ${(e as Error).message}; serving the cached manifest ${cached.digest}`);
      return cached;
    }
    await this.store(fresh);
    await writeFileAtomic(tagPath, JSON.stringify({ digest: fresh.digest, fetchedAt: Date.now() } satisfies TagEntry));
    return fresh;
  }

  private async store(m: Manifest): Promise<Manifest> {
    const path = this.path(m.digest);
    await writeFileAtomic(path, m.bytes);
    await writeFileAtomic(`${path}.type`, m.mediaType);
    return m;
  }

  /** A stored manifest, or undefined when absent or not matching its digest (then it is fetched again). */
  private async read(digest: string): Promise<Manifest | undefined> {
    const path = this.path(digest);
    const [bytes, mediaType] = await Promise.all([readFile(path).catch(() => undefined), readFile(`${path}.type`, 'utf8').catch(() => undefined)]);
    if (!bytes || mediaType === undefined || sha256Digest(bytes) !== digest) return undefined;
    return { bytes, digest, mediaType };
  }

  private path(digest: string): string {
    return join(this.dir, 'sha256', digest.slice('sha256:'.length));
  }
}

async function readJson<T>(path: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as T;
  } catch {
    return undefined;
  }
}
