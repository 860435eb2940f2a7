import type { Descriptor } from '../oci/manifest.js';

/** A recorded start-up trace travels with its image as an extra manifest entry of this type. */
export const MEDIA_TYPE_TRACE = 'application/vnd.lazybd.trace.v1+json';

export function traceDescriptorOf(layers: readonly Descriptor[]): Descriptor | undefined {
  return layers.find((d) => d.mediaType === MEDIA_TYPE_TRACE);
}
