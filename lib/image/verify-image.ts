import { ChunkDigestError } from '../format/errors.js';
import { LazybdError } from '../errors.js';
import { LayerNotLocalError, type LocalImage } from './local-image.js';
import type { Progress } from './raw-scanner.js';

export class ImageVerifyError extends LazybdError {
  constructor(
    readonly layer: number,
    readonly layerDigest: string,
    readonly chunk: number,
    readonly physicalOffset: number,
  ) {
    super('E_VERIFY_FAILED', `layer ${layer} (${layerDigest}): chunk ${chunk} at blob offset ${physicalOffset} does not match its digest`, { exitStatus: 4 });
  }
}

/** `lazybd verify`: every layer's header and every chunk against its digest (and decoding); stops at the first bad chunk. */
export async function verifyImage(image: LocalImage, onProgress?: Progress): Promise<{ chunks: number; bytes: number }> {
  const total = image.layers.reduce((n, l) => n + l.reader.chunks.storedLength, 0);
  let bytes = 0;
  let chunks = 0;
  for (const [i, layer] of image.layers.entries()) {
    if (!layer.local) throw new LayerNotLocalError(image.ref, layer.descriptor.digest);
    await layer.reader.checkHeader();
    for (let c = 0; c < layer.reader.chunks.count; c++) {
      try {
        // Decoded too: a compressed chunk must give its data, not only match its digest.
        await layer.reader.readChunkData(c);
      } catch (e) {
        if (e instanceof ChunkDigestError) throw new ImageVerifyError(i, layer.descriptor.digest, c, e.physicalOffset);
        throw e;
      }
      chunks++;
      bytes += layer.reader.chunks.length(c);
      onProgress?.(bytes, total);
    }
  }
  return { chunks, bytes };
}
