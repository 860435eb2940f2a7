import { createReadStream } from 'node:fs';
import { LazybdError } from '../errors.js';
import { formatReference, type RemoteReference } from '../oci/reference.js';
import { pushImage as pushToRegistry } from '../registry/image-transfer.js';
import type { RegistryClient } from '../registry/registry-client.js';
import type { OciStore } from '../store/oci-store.js';
import type { Progress } from './raw-scanner.js';

export interface PushResult {
  remote: string;
  manifestDigest: string;
  /** Per blob: uploaded, already there, or mounted from another repository. */
  blobs: { digest: string; size: number; outcome: string }[];
}

/** `lazybd push`: every blob of a local image (config, layers) the registry lacks, then the manifest bytes as stored. */
export async function pushImage(store: OciStore, client: RegistryClient, ref: string, remote: RemoteReference, options: { onProgress?: Progress; mountFrom?: string } = {}): Promise<PushResult> {
  if (!remote.tag) throw new LazybdError('E_USAGE', `push needs a tag in ${formatReference(remote)}`, { exitStatus: 2 });
  const { descriptor, manifest } = await store.resolve(ref);
  const manifestBytes = await store.readBlob(descriptor.digest);
  const blobs = [manifest.config, ...manifest.layers];
  for (const b of blobs) {
    if (!(await store.hasBlob(b.digest))) {
      throw new LazybdError('E_BLOB_NOT_LOCAL', `${ref} was pulled lazily: blob ${b.digest} is not in the store (pull --full first)`, { exitStatus: 2 });
    }
  }
  const total = blobs.reduce((n, b) => n + b.size, 0);
  let done = 0;
  const result = await pushToRegistry(client, remote.repository, remote.tag, {
    manifest: manifestBytes,
    manifestMediaType: descriptor.mediaType,
    blobs: blobs.map((b) => ({ descriptor: b, open: () => createReadStream(store.blobPath(b.digest)) })),
    mountFrom: options.mountFrom,
    onProgress: (n) => options.onProgress?.((done += n), total),
  });
  return {
    remote: formatReference(remote),
    manifestDigest: result.digest,
    blobs: blobs.map((b) => ({ digest: b.digest, size: b.size, outcome: result.outcomes.get(b.digest) ?? 'uploaded' })),
  };
}
