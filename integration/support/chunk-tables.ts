import type { ChunkTable } from '../../lib/format/chunk-table.js';
import { LocalImage } from '../../lib/image/local-image.js';
import { OciStore } from '../../lib/store/oci-store.js';

/** The chunk tables of a local image's layers, bottom first: what its chunks are named and how big they are stored. */
export async function chunkTables(storeDir: string, ref: string): Promise<ChunkTable[]> {
  const image = await LocalImage.open(await OciStore.open(storeDir), ref);
  try {
    return image.layers.map((l) => l.reader.chunks);
  } finally {
    await image.close();
  }
}
