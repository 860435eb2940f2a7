import type { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Dispatcher } from 'undici';
import { MEDIA_TYPE_OCI_INDEX, MEDIA_TYPE_OCI_MANIFEST } from '../oci/manifest.js';
import { repositoryScope } from './authorizer.js';
import { cancelUpload, startUpload, uploadChunked, uploadMonolithic, type BlobContent } from './blob-upload.js';
import { sha256Digest, verifyBytes, verifyingStream, type BlobDescriptor } from './content-digest.js';
import {
  BlobUnknownError,
  DigestMismatchError,
  RangeNotSatisfiableError,
  RangeUnsupportedError,
  RegistryProtocolError,
} from './errors.js';
import { HttpTransport, type TransportOptions } from './http-transport.js';
import { abandon, readBody, readRange } from './response-body.js';
import { transportError } from './response-errors.js';

/** Manifest media types lazybd asks for: OCI first, Docker's for registries that convert. */
export const MANIFEST_ACCEPT = [
  MEDIA_TYPE_OCI_MANIFEST,
  MEDIA_TYPE_OCI_INDEX,
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
];

/** Registries must accept manifests of at least 4 MiB (distribution spec); larger is refused unread. */
const MANIFEST_LIMIT = 4 * 1024 * 1024;

export interface RegistryClientOptions extends TransportOptions {
  /**
   * A server that answers a Range request with the whole blob (200): 'slice'
   * reads past the unwanted bytes and stops after the wanted ones; 'refuse'
   * fails with RangeUnsupportedError so the caller can use another source.
   */
  rangeFallback?: 'slice' | 'refuse';
}

export interface Manifest {
  bytes: Buffer;
  digest: string;
  mediaType: string;
}

export interface ManifestDescriptor {
  digest: string;
  size: number;
  mediaType: string;
}

export interface UploadOptions {
  /** A repository on the same registry to try mounting the blob from before uploading it. */
  mountFrom?: string;
  /** Upload in PATCH chunks of this many bytes when the blob is larger; default one PUT. */
  chunkSize?: number;
  onProgress?: (bytes: number) => void;
}

export type UploadOutcome = 'exists' | 'mounted' | 'uploaded';

/**
 * A client for one registry host (OCI distribution spec v1). Every method names
 * the repository, so one client (one connection pool, one token cache) serves
 * all repositories on the host. Call `close()` when done.
 */
export class RegistryClient {
  private readonly transport: HttpTransport;
  private readonly rangeFallback: 'slice' | 'refuse';

  constructor(options: RegistryClientOptions) {
    this.transport = new HttpTransport(options);
    this.rangeFallback = options.rangeFallback ?? 'slice';
  }

  get registry(): string {
    return this.transport.options.registry;
  }

  /** GET a manifest by tag or digest. A digest reference is verified against the bytes. */
  async getManifest(repository: string, reference: string, accept: string[] = MANIFEST_ACCEPT): Promise<Manifest> {
    const what = `GET manifest ${repository}:${reference}`;
    const res = await this.transport.send({
      method: 'GET',
      url: `/v2/${repository}/manifests/${reference}`,
      scopes: [repositoryScope(repository, 'pull')],
      headers: { accept: accept.join(', ') },
      expect: [200],
      subject: 'manifest',
      what,
    });
    const declared = Number(res.headers['content-length'] ?? 0);
    if (declared > MANIFEST_LIMIT) {
      abandon(res);
      throw new RegistryProtocolError(`${what}: manifest of ${declared} bytes exceeds the ${MANIFEST_LIMIT}-byte limit`);
    }
    const bytes = await readBody(res, MANIFEST_LIMIT, what);
    // Tags cannot contain ':', digests always do.
    const pinned = reference.includes(':');
    if (pinned) verifyBytes(bytes, { digest: reference, size: bytes.length });
    return { bytes, digest: pinned ? reference : sha256Digest(bytes), mediaType: contentType(res) };
  }

  /** HEAD a manifest: resolves a tag to its digest without downloading it. */
  async headManifest(repository: string, reference: string): Promise<ManifestDescriptor> {
    const what = `HEAD manifest ${repository}:${reference}`;
    const res = await this.transport.send({
      method: 'HEAD',
      url: `/v2/${repository}/manifests/${reference}`,
      scopes: [repositoryScope(repository, 'pull')],
      headers: { accept: MANIFEST_ACCEPT.join(', ') },
      expect: [200],
      subject: 'manifest',
      what,
    });
    await res.body.dump();
    const digest = res.headers['docker-content-digest'];
    if (typeof digest !== 'string') throw new RegistryProtocolError(`${what}: no Docker-Content-Digest header`, { status: 200 });
    return { digest, size: contentLength(res, what), mediaType: contentType(res) };
  }

  /** PUT a manifest under a tag (or its digest). Returns the manifest's digest. */
  async putManifest(repository: string, reference: string, bytes: Buffer, mediaType: string): Promise<string> {
    const what = `PUT manifest ${repository}:${reference}`;
    const digest = sha256Digest(bytes);
    const res = await this.transport.send({
      method: 'PUT',
      url: `/v2/${repository}/manifests/${reference}`,
      scopes: [repositoryScope(repository, 'pull,push')],
      headers: { 'content-type': mediaType, 'content-length': String(bytes.length) },
      body: bytes,
      expect: [201],
      subject: 'manifest',
      what,
    });
    await res.body.dump();
    const stored = res.headers['docker-content-digest'];
    if (typeof stored === 'string' && stored.startsWith('sha256:') && stored !== digest) {
      throw new DigestMismatchError(digest, stored, `${what}: registry stored ${stored}, we sent ${digest}`);
    }
    return digest;
  }

  /** HEAD a blob. Throws BlobUnknownError when the repository does not have it. */
  async headBlob(repository: string, digest: string): Promise<{ size: number }> {
    const what = `HEAD blob ${repository}@${digest}`;
    const res = await this.transport.send({
      method: 'HEAD',
      url: `/v2/${repository}/blobs/${digest}`,
      scopes: [repositoryScope(repository, 'pull')],
      expect: [200],
      subject: 'blob',
      what,
    });
    await res.body.dump();
    return { size: contentLength(res, what) };
  }

  async hasBlob(repository: string, digest: string): Promise<boolean> {
    try {
      await this.headBlob(repository, digest);
      return true;
    } catch (e) {
      if (e instanceof BlobUnknownError) return false;
      throw e;
    }
  }

  /**
   * Streams a whole blob into `sink`, checking size and digest as it goes. On a
   * mismatch the sink has already received the bad bytes and the promise
   * rejects: write to a temporary file and rename only on success.
   */
  async getBlob(repository: string, blob: BlobDescriptor, sink: Writable, onProgress?: (bytes: number) => void): Promise<void> {
    const what = `GET blob ${repository}@${blob.digest}`;
    const res = await this.transport.send({
      method: 'GET',
      url: `/v2/${repository}/blobs/${blob.digest}`,
      scopes: [repositoryScope(repository, 'pull')],
      expect: [200],
      subject: 'blob',
      what,
    });
    try {
      await pipeline(res.body, verifyingStream(blob, onProgress), sink);
    } catch (e) {
      // A failing sink (disk full) is the caller's error, not the network's.
      throw e === sink.errored ? e : transportError(e, what);
    }
  }

  /** A whole (small) blob in memory, verified: configs and the like. */
  async readBlob(repository: string, blob: BlobDescriptor): Promise<Buffer> {
    const what = `GET blob ${repository}@${blob.digest}`;
    const res = await this.transport.send({
      method: 'GET',
      url: `/v2/${repository}/blobs/${blob.digest}`,
      scopes: [repositoryScope(repository, 'pull')],
      expect: [200],
      subject: 'blob',
      what,
    });
    const bytes = await readBody(res, blob.size + 1, what);
    verifyBytes(bytes, blob);
    return bytes;
  }

  /**
   * Bytes [offset, offset+length) of a blob — the lazy-loading hot path. The
   * bytes are not verified here: the caller checks them against its chunk
   * digests. A 206 must cover exactly the range asked for.
   */
  async readBlobRange(repository: string, digest: string, offset: number, length: number, signal?: AbortSignal): Promise<Buffer> {
    if (length === 0) return Buffer.alloc(0);
    const end = offset + length - 1;
    const what = `GET blob ${repository}@${digest} bytes ${offset}-${end}`;
    const res = await this.transport.send({
      method: 'GET',
      url: `/v2/${repository}/blobs/${digest}`,
      scopes: [repositoryScope(repository, 'pull')],
      headers: { range: `bytes=${offset}-${end}` },
      signal,
      expect: [200, 206],
      subject: 'blob',
      what,
    });
    if (res.statusCode === 206) {
      const range = parseContentRange(res.headers['content-range']);
      if (range?.start !== offset || range.end !== end) {
        abandon(res);
        if (range?.start === offset && range.total === range.end + 1) {
          throw new RangeNotSatisfiableError(`${what}: blob has only ${range.total} bytes`, { status: 206 });
        }
        throw new RegistryProtocolError(`${what}: server sent Content-Range ${String(res.headers['content-range'])}`, { status: 206 });
      }
      return readRange(res, 0, length, what);
    }
    if (this.rangeFallback === 'refuse') {
      abandon(res);
      throw new RangeUnsupportedError(`${what}: server ignored the Range header and sent the whole blob`);
    }
    return readRange(res, offset, length, what);
  }

  /**
   * Links a blob from another repository on this registry without uploading it.
   * Returns false when the registry would not (it then opened an upload session,
   * which is cancelled).
   */
  async mountBlob(repository: string, digest: string, fromRepository: string): Promise<boolean> {
    const session = await startUpload(this.transport, repository, digest, fromRepository);
    if (session.mounted) return true;
    await cancelUpload(this.transport, repository, session.location);
    return false;
  }

  /**
   * Makes sure `repository` has the blob: nothing to do if a HEAD finds it, a
   * mount if `mountFrom` has it, else an upload (one PUT, or PATCH chunks when
   * `chunkSize` is set and the blob is larger).
   */
  async uploadBlob(repository: string, blob: BlobDescriptor, content: BlobContent, options: UploadOptions = {}): Promise<UploadOutcome> {
    if (await this.hasBlob(repository, blob.digest)) return 'exists';
    const session = await startUpload(this.transport, repository, blob.digest, options.mountFrom);
    if (session.mounted) return 'mounted';
    try {
      if (options.chunkSize !== undefined && blob.size > options.chunkSize) {
        await uploadChunked(this.transport, repository, session.location, blob, content, options.chunkSize, options.onProgress);
      } else {
        await uploadMonolithic(this.transport, repository, session.location, blob, content, options.onProgress);
      }
    } catch (e) {
      // Free the registry's half-written upload; the upload's own error is the one worth reporting.
      await cancelUpload(this.transport, repository, session.location).catch(() => undefined);
      throw e;
    }
    return 'uploaded';
  }

  close(): Promise<void> {
    return this.transport.close();
  }
}

function contentType(res: Dispatcher.ResponseData): string {
  const value = res.headers['content-type'];
  return (Array.isArray(value) ? value[0] : value)?.split(';')[0]?.trim() ?? '';
}

function contentLength(res: Dispatcher.ResponseData, what: string): number {
  const size = Number(res.headers['content-length']);
  if (!Number.isSafeInteger(size) || size < 0) throw new RegistryProtocolError(`${what}: no usable Content-Length`, { status: res.statusCode });
  return size;
}

/** `bytes <start>-<end>/<total|*>` */
function parseContentRange(header: string | string[] | undefined): { start: number; end: number; total: number } | undefined {
  const m = typeof header === 'string' ? /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(header.trim()) : null;
  if (!m) return undefined;
  return { start: Number(m[1]), end: Number(m[2]), total: m[3] === '*' ? NaN : Number(m[3]) };
}
