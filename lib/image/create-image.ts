import { open } from 'node:fs/promises';
import { withCompressor, type CodecChoice } from './layer-compression.js';
import { DEFAULT_CHUNK_SIZE } from '../format/layer-spec.js';
import { LayerWriter, type LayerSummary } from '../format/layer-writer.js';
import type { Descriptor } from '../oci/manifest.js';
import { hashChunksOffThread } from '../store/native-io.js';
import type { OciStore } from '../store/oci-store.js';
import { layerDescriptor } from './layer-descriptor.js';
import { writeRawIntoLayer, type Progress } from './raw-scanner.js';
import { saveImage } from './save-image.js';

export interface CreateResult {
  manifest: Descriptor;
  layer: Descriptor;
  summary: LayerSummary;
  virtualSize: number;
}

/**
 * `lazybd create`: a one-layer image from a raw disk image file; zero blocks become holes.
 * The layer depends only on the file's bytes and the chunk size; config and manifest add `created`.
 */
export async function createImageFromRaw(
  store: OciStore,
  rawPath: string,
  ref: string,
  options: { created: string; chunkSize?: number; compress?: CodecChoice; onProgress?: Progress },
): Promise<CreateResult> {
  const chunkSize = options.chunkSize ?? DEFAULT_CHUNK_SIZE;
  const input = await open(rawPath, 'r');
  try {
    const virtualSize = (await input.stat()).size;
    return await store.lease(() => withCompressor(options.compress, async (compressor) => {
      const blob = await store.newBlob();
      try {
        // Chunks hash on the thread pool (native backend) while the blob writer hashes the blob here.
        const writer = new LayerWriter(blob, { virtualSize, chunkSize, compressor, ...(hashChunksOffThread ? { hashChunks: hashChunksOffThread } : {}) });
        await writeRawIntoLayer(input, virtualSize, writer, options.onProgress);
        const summary = await writer.finish();
        const layer = layerDescriptor(await blob.commit(), summary);
        const manifest = await saveImage(store, ref, [layer], { virtualSize, chunkSize, created: options.created });
        return { manifest, layer, summary, virtualSize };
      } finally {
        await blob.abort();
      }
    }));
  } finally {
    await input.close();
  }
}
