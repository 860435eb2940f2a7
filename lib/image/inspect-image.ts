import type { LocalImage } from './local-image.js';

export interface ImageReport {
  ref: string;
  manifestDigest: string;
  virtualSize: number;
  chunkSize: number;
  /** Bytes of the device backed by layer data (what a full pull must move). */
  allocatedBytes: number;
  layers: {
    digest: string;
    size: number;
    extents: number;
    chunks: number;
    chunkSize: number;
    dataBytes: number;
    metaBytes: number;
  }[];
}

export function inspectImage(image: LocalImage): ImageReport {
  let allocatedBytes = 0;
  for (const p of image.index.resolve(0, image.virtualSize)) if (p.kind === 'data') allocatedBytes += p.length;
  return {
    ref: image.ref,
    manifestDigest: image.manifestDescriptor.digest,
    virtualSize: image.virtualSize,
    chunkSize: image.config.chunkSize,
    allocatedBytes,
    layers: image.layers.map((l) => ({
      digest: l.descriptor.digest,
      size: l.descriptor.size,
      extents: l.reader.extents.count,
      chunks: l.reader.chunks.count,
      chunkSize: l.reader.trailer.chunkSize,
      dataBytes: l.reader.trailer.dataLength,
      metaBytes: l.reader.metaLocation.length,
    })),
  };
}
