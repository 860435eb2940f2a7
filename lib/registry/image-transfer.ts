import type { Readable } from 'node:stream';
import { MEDIA_TYPE_OCI_MANIFEST } from '../oci/manifest.js';
import { manifestReference, type RemoteReference } from '../oci/reference.js';
import type { BlobDescriptor } from './content-digest.js';
import type { Manifest, RegistryClient, UploadOutcome } from './registry-client.js';

export interface PushBlob {
  descriptor: BlobDescriptor;
  /** Opened only if the registry needs the bytes (not when the blob exists or is mounted). */
  open(): Readable;
}

export interface PushImageOptions {
  /** The manifest exactly as it is to be stored: its digest is computed over these bytes. */
  manifest: Buffer;
  /** Default: OCI image manifest. */
  manifestMediaType?: string;
  /** Every blob the manifest references (config and layers). */
  blobs: PushBlob[];
  /** Another repository on the same registry that may already hold some blobs. */
  mountFrom?: string;
  /** PATCH chunk size for blobs larger than it; default one PUT per blob. */
  chunkSize?: number;
  /** Blobs uploaded at once. Default 3. */
  concurrency?: number;
  /** Bytes done, as they happen. Blobs found or mounted count whole, so the total is the sum of the blob sizes. */
  onProgress?: (bytes: number) => void;
  onBlob?: (descriptor: BlobDescriptor, outcome: UploadOutcome) => void;
}

export interface PushResult {
  digest: string;
  outcomes: Map<string, UploadOutcome>;
}

/** Uploads the blobs the registry lacks, then the manifest under `tag` — in that order, as the registry requires. */
export async function pushImage(client: RegistryClient, repository: string, tag: string, options: PushImageOptions): Promise<PushResult> {
  const outcomes = new Map<string, UploadOutcome>();
  const queue = dedupe(options.blobs);
  const worker = async () => {
    try {
      for (let blob = queue.shift(); blob; blob = queue.shift()) {
        const { descriptor } = blob;
        const outcome = await client.uploadBlob(repository, descriptor, () => blob.open(), {
          mountFrom: options.mountFrom,
          chunkSize: options.chunkSize,
          onProgress: options.onProgress,
        });
        if (outcome !== 'uploaded') options.onProgress?.(descriptor.size);
        outcomes.set(descriptor.digest, outcome);
        options.onBlob?.(descriptor, outcome);
      }
    } catch (e) {
      // Keep the other workers from starting blobs nobody will use.
      queue.length = 0;
      throw e;
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, options.concurrency ?? 3) }, worker));
  const digest = await client.putManifest(repository, tag, options.manifest, options.manifestMediaType ?? MEDIA_TYPE_OCI_MANIFEST);
  return { digest, outcomes };
}

/** The manifest a remote reference names (by digest when it has one, and then verified). `client` must be for `ref.registry`. */
export function pullManifest(client: RegistryClient, ref: RemoteReference): Promise<Manifest> {
  return client.getManifest(ref.repository, manifestReference(ref));
}

function dedupe(blobs: PushBlob[]): PushBlob[] {
  const seen = new Set<string>();
  return blobs.filter((b) => !seen.has(b.descriptor.digest) && seen.add(b.descriptor.digest));
}
