import { MEDIA_TYPE_LAYER } from '../format/layer-spec.js';
import { MEDIA_TYPE_OCI_MANIFEST, type Descriptor, type ImageManifest } from '../oci/manifest.js';
import { TraceFormatError } from '../source/errors.js';
import { decodeTrace, encodeTrace } from '../source/trace.js';
import type { OciStore } from '../store/oci-store.js';
import { LocalImage } from './local-image.js';
import { MEDIA_TYPE_TRACE } from './trace-blob.js';

/**
 * `lazybd trace attach`: stores a recorded trace with an image as an extra manifest
 * entry (replacing any earlier trace) and re-tags the image. Layers, and so every data
 * digest, stay as they were; `push` then publishes trace and image together.
 */
export async function attachTrace(store: OciStore, ref: string, traceText: string): Promise<{ manifest: Descriptor; trace: Descriptor; entries: number }> {
  const image = await LocalImage.open(store, ref);
  try {
    const trace = decodeTrace(traceText, image.layers.map((l) => l.reader.chunks.count));
    const digests = image.layers.map((l) => l.descriptor.digest);
    if (trace.layers.some((d, i) => d !== digests[i])) throw new TraceFormatError(`the trace was recorded on other layers than ${ref}'s`);
    return await store.lease(async () => {
      const blob = await store.putBlob(Buffer.from(encodeTrace(trace)));
      const traceDescriptor: Descriptor = { mediaType: MEDIA_TYPE_TRACE, ...blob };
      const manifest: ImageManifest = { ...image.manifest, layers: [...image.manifest.layers.filter((l) => l.mediaType === MEDIA_TYPE_LAYER), traceDescriptor] };
      const stored = await store.putBlob(Buffer.from(JSON.stringify(manifest)));
      const descriptor: Descriptor = { mediaType: MEDIA_TYPE_OCI_MANIFEST, ...stored };
      await store.tag(ref, descriptor, image.manifestDescriptor.annotations);
      return { manifest: descriptor, trace: traceDescriptor, entries: trace.entries.length };
    });
  } finally {
    await image.close();
  }
}
