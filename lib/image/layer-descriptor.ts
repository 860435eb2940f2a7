import type { LayerSummary } from '../format/layer-writer.js';
import { ANNOTATION_META_DIGEST, ANNOTATION_META_LENGTH, ANNOTATION_META_OFFSET, MEDIA_TYPE_LAYER } from '../format/layer-spec.js';
import type { MetaLocation } from '../format/layer-reader.js';
import type { Descriptor } from '../oci/manifest.js';

/** The manifest entry for a layer: where its metadata sits, so a lazy pull needs one Range read. */
export function layerDescriptor(blob: { digest: string; size: number }, summary: LayerSummary): Descriptor {
  return {
    mediaType: MEDIA_TYPE_LAYER,
    digest: blob.digest,
    size: blob.size,
    annotations: {
      [ANNOTATION_META_OFFSET]: String(summary.metaOffset),
      [ANNOTATION_META_LENGTH]: String(summary.metaLength),
      [ANNOTATION_META_DIGEST]: `sha256:${summary.metaDigest.toString('hex')}`,
    },
  };
}

/** The metadata location a descriptor advertises, if it advertises a usable one. */
export function metaLocationOf(d: Descriptor): MetaLocation | undefined {
  const offset = Number(d.annotations?.[ANNOTATION_META_OFFSET]);
  const length = Number(d.annotations?.[ANNOTATION_META_LENGTH]);
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length <= 0) return undefined;
  return { offset, length };
}
