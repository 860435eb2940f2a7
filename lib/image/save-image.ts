import { ANNOTATION_CREATED, MEDIA_TYPE_OCI_MANIFEST, type Descriptor, type ImageManifest } from '../oci/manifest.js';
import { MEDIA_TYPE_CONFIG } from '../format/layer-spec.js';
import type { OciStore } from '../store/oci-store.js';
import { encodeImageConfig } from './image-config.js';
import { originAnnotations, type ImageOrigin } from './origin.js';

/**
 * Writes config + manifest for `layers` (bottom first) and tags them as `ref`. Returns the
 * manifest descriptor. `created` (see imageCreatedTime) is the only input not taken from
 * the layers, so with a fixed one the same layers give the same manifest digest.
 * `origin` (an image over a lazily pulled base) says where the layers the store lacks come from.
 */
export async function saveImage(
  store: OciStore,
  ref: string,
  layers: Descriptor[],
  image: { virtualSize: number; chunkSize: number; created: string; origin?: ImageOrigin },
): Promise<Descriptor> {
  const { created, origin, ...shape } = image;
  const config = await store.putBlob(encodeImageConfig({ ...shape, created }));
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: MEDIA_TYPE_OCI_MANIFEST,
    config: { mediaType: MEDIA_TYPE_CONFIG, ...config },
    layers,
    annotations: { [ANNOTATION_CREATED]: created },
  };
  const blob = await store.putBlob(Buffer.from(JSON.stringify(manifest)));
  const descriptor: Descriptor = { mediaType: MEDIA_TYPE_OCI_MANIFEST, ...blob };
  await store.tag(ref, descriptor, origin && originAnnotations(origin));
  return descriptor;
}
