import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { LazybdError } from '../errors.js';
import type { MetaLocation } from '../format/layer-reader.js';
import { MEDIA_TYPE_CONFIG, MEDIA_TYPE_LAYER, TRAILER_SIZE } from '../format/layer-spec.js';
import { openLayerFromMeta } from '../format/meta-random-access.js';
import { decodeTrailer } from '../format/trailer.js';
import { parseManifest, type Descriptor } from '../oci/manifest.js';
import { formatReference, type RemoteReference } from '../oci/reference.js';
import { isRetryable } from '../registry/errors.js';
import { pullManifest } from '../registry/image-transfer.js';
import type { RegistryClient } from '../registry/registry-client.js';
import type { OciStore } from '../store/oci-store.js';
import { parseImageConfig } from './image-config.js';
import { metaLocationOf } from './layer-descriptor.js';
import { originAnnotations } from './origin.js';
import type { Progress } from './raw-scanner.js';
import { traceDescriptorOf } from './trace-blob.js';

export class NotALazybdImageError extends LazybdError {
  constructor(message: string) {
    super('E_NOT_LAZYBD_IMAGE', message, { exitStatus: 3 });
  }
}

export interface PullResult {
  ref: string;
  manifestDigest: string;
  virtualSize: number;
  /** Bytes moved from the registry: manifest, config, layer metadata (and data with `full`). */
  bytesFetched: number;
  layers: number;
  /** Layers whose whole blob is now in the store. */
  layersComplete: number;
}

/**
 * `lazybd pull`: the manifest, the config and each layer's metadata (one Range read
 * a layer) go into the store; layer data stays remote unless `full`. The image is
 * tagged `ref` with its origin, so serving it later knows where to fetch data.
 */
export async function pullImage(
  store: OciStore,
  client: RegistryClient,
  remote: RemoteReference,
  ref: string,
  options: { full?: boolean; plainHttp?: boolean; onProgress?: Progress } = {},
): Promise<PullResult> {
  const manifestBytes = await pullManifest(client, remote);
  const manifest = parseManifest(manifestBytes.bytes);
  if (manifest.config.mediaType !== MEDIA_TYPE_CONFIG) throw new NotALazybdImageError(`${formatReference(remote)} is not a lazybd image (config ${manifest.config.mediaType})`);
  const layers = manifest.layers.filter((l) => l.mediaType === MEDIA_TYPE_LAYER);
  let fetched = manifestBytes.bytes.length;
  const total = options.full ? layers.reduce((n, l) => n + l.size, 0) : layers.length;
  let done = 0;
  return store.lease(async () => {
    let complete = 0;
    const readConfig = async () => {
      const bytes = await client.readBlob(remote.repository, manifest.config);
      const config = parseImageConfig(bytes);
      await store.putBlob(bytes);
      fetched += bytes.length;
      return config;
    };
    const readLayer = async (layer: Descriptor) => {
      if (await store.hasBlob(layer.digest)) {
        complete++;
      } else if (options.full) {
        fetched += await downloadBlob(store, client, remote.repository, layer, (n) => options.onProgress?.((done += n), total));
        complete++;
        return;
      } else if (!(await store.readLayerMeta(layer.digest))) {
        fetched += await fetchLayerMeta(store, client, remote.repository, layer);
      }
      options.onProgress?.(options.full ? (done += layer.size) : ++done, total);
    };
    const readTrace = async () => {
      const trace = traceDescriptorOf(manifest.layers);
      if (!trace || (await store.hasBlob(trace.digest))) return;
      const bytes = await client.readBlob(remote.repository, trace);
      await store.putBlob(bytes);
      fetched += bytes.length;
    };
    // Small reads go out together (a pull is a cold start's critical path: one registry
    // round trip, not one per layer); whole-layer downloads stay one at a time.
    const layerReads = options.full ? [eachInTurn(layers, readLayer)] : layers.map(readLayer);
    const config = readConfig();
    await settleAll([config, readTrace(), ...layerReads]);
    const stored = await store.putBlob(manifestBytes.bytes);
    const originRef = formatReference({ ...remote, tag: undefined, digest: manifestBytes.digest });
    await store.tag(ref, { mediaType: manifest.mediaType, ...stored }, originAnnotations({ ref: originRef, plainHttp: options.plainHttp ?? false }));
    return { ref, manifestDigest: stored.digest, virtualSize: (await config).virtualSize, bytesFetched: fetched, layers: layers.length, layersComplete: complete };
  });
}

/**
 * `pullImage` from the first of `clients` that can (supernodes, then the registry itself):
 * a cache that is down or does not have the image only costs the time to find out.
 */
export async function pullImageFrom(
  store: OciStore,
  clients: readonly RegistryClient[],
  remote: RemoteReference,
  ref: string,
  options: PullFromOptions = {},
): Promise<PullResult> {
  if (clients.length === 0) throw new RangeError('pullImageFrom needs at least one client');
  for (let round = 1; ; round++) {
    for (const [i, client] of clients.entries()) {
      try {
        return await pullImage(store, client, remote, ref, options);
      } catch (e) {
        if (!(e instanceof LazybdError)) throw e;
        if (i < clients.length - 1) {
          options.onFallback?.(client, e);
          continue;
        }
        // Every source failed. A transient failure (a connect timeout on a loaded host, a 503)
        // gets the whole list again after a pause, so a node's start does not hang on one bad second.
        if (round === PULL_ROUNDS || !isRetryable(e)) throw e;
        const delayMs = PULL_RETRY_MS * 2 ** (round - 1);
        options.onRetry?.(e, delayMs);
        await sleep(delayMs);
      }
    }
  }
}

/** How often the sources are tried in all when every one fails with a retryable error, and the first pause between. */
const PULL_ROUNDS = 3;
const PULL_RETRY_MS = 1000;

export interface PullFromOptions {
  full?: boolean;
  plainHttp?: boolean;
  onProgress?: Progress;
  /** A source (a supernode) failed and the next one is tried. */
  onFallback?: (from: RegistryClient, err: Error) => void;
  /** Every source failed with a retryable error; all are tried again after `delayMs`. */
  onRetry?: (err: Error, delayMs: number) => void;
}

/** One Range read when the manifest says where the metadata is; the trailer first otherwise. */
async function fetchLayerMeta(store: OciStore, client: RegistryClient, repository: string, layer: Descriptor): Promise<number> {
  let meta: MetaLocation | undefined = metaLocationOf(layer);
  let extra = 0;
  if (!meta || meta.offset + meta.length !== layer.size) {
    const trailer = decodeTrailer(await client.readBlobRange(repository, layer.digest, layer.size - TRAILER_SIZE, TRAILER_SIZE));
    meta = { offset: trailer.indexOffset, length: layer.size - trailer.indexOffset };
    extra = TRAILER_SIZE;
  }
  const bytes = await client.readBlobRange(repository, layer.digest, meta.offset, meta.length);
  await openLayerFromMeta(layer.size, bytes);
  await store.putLayerMeta(layer.digest, bytes);
  return bytes.length + extra;
}

async function downloadBlob(store: OciStore, client: RegistryClient, repository: string, layer: Descriptor, onBytes: (n: number) => void): Promise<number> {
  const blob = await store.newBlob();
  try {
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        blob.write(chunk).then(() => cb(), cb);
      },
    });
    await client.getBlob(repository, layer, sink, onBytes);
    await blob.commit();
    return layer.size;
  } finally {
    await blob.abort();
  }
}

async function eachInTurn<T>(items: readonly T[], fn: (item: T) => Promise<void>): Promise<void> {
  for (const item of items) await fn(item);
}

/** Waits for every promise (none is left running on a failure), then throws the first error. */
async function settleAll(promises: readonly Promise<unknown>[]): Promise<void> {
  const failed = (await Promise.allSettled(promises)).find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}
