import { LayerReader } from '../format/layer-reader.js';
import { MergedIndex } from '../format/merged-index.js';
import type { Descriptor, ImageManifest } from '../oci/manifest.js';
import type { FileRandomAccess } from '../store/file-random-access.js';
import type { OciStore } from '../store/oci-store.js';
import { parseImageConfig, type ImageConfig } from './image-config.js';
import { metaLocationOf } from './layer-descriptor.js';

export interface OpenLayer {
  descriptor: Descriptor;
  reader: LayerReader;
  file: FileRandomAccess;
}

/** An image of the local store, its layers opened (metadata only) and their indexes merged. */
export class LocalImage {
  private constructor(
    readonly ref: string,
    readonly manifestDescriptor: Descriptor,
    readonly manifest: ImageManifest,
    readonly config: ImageConfig,
    readonly layers: OpenLayer[],
    readonly index: MergedIndex,
  ) {}

  static async open(store: OciStore, ref: string): Promise<LocalImage> {
    const { descriptor, manifest } = await store.resolve(ref);
    const config = parseImageConfig(await store.readBlob(manifest.config.digest));
    const files: FileRandomAccess[] = [];
    const layers: OpenLayer[] = [];
    try {
      for (const d of manifest.layers) {
        const file = await store.openBlob(d.digest);
        files.push(file);
        layers.push({ descriptor: d, file, reader: await LayerReader.open(file, metaLocationOf(d)) });
      }
    } catch (e) {
      await Promise.all(files.map((f) => f.close()));
      throw e;
    }
    const index = MergedIndex.build(
      layers.map((l) => l.reader.extents),
      config.virtualSize,
    );
    return new LocalImage(ref, descriptor, manifest, config, layers, index);
  }

  get virtualSize(): number {
    return this.config.virtualSize;
  }

  async close(): Promise<void> {
    await Promise.all(this.layers.map((l) => l.file.close()));
  }
}
