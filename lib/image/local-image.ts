import { LazybdError } from '../errors.js';
import { LayerReader } from '../format/layer-reader.js';
import { MEDIA_TYPE_LAYER } from '../format/layer-spec.js';
import { MergedIndex } from '../format/merged-index.js';
import { openLayerFromMeta } from '../format/meta-random-access.js';
import type { Descriptor, ImageManifest } from '../oci/manifest.js';
import { DecodedChunks } from '../source/decoded-chunks.js';
import type { LayerData } from '../source/layer-data.js';
import { StoredBlobData } from '../source/stored-blob-data.js';
import type { OciStore } from '../store/oci-store.js';
import { parseImageConfig, type ImageConfig } from './image-config.js';
import { metaLocationOf } from './layer-descriptor.js';
import { originOf, type ImageOrigin } from './origin.js';

export interface OpenLayer {
  descriptor: Descriptor;
  reader: LayerReader;
  data: LayerData;
  /** The whole blob is in the store (not only its metadata). */
  local: boolean;
}

/** Makes the data of a layer whose blob is not local (lazily pulled): cache + remote sources. */
export type RemoteLayerFactory = (descriptor: Descriptor, reader: LayerReader, index: number, origin: ImageOrigin | undefined) => LayerData;

export class LayerNotLocalError extends LazybdError {
  constructor(ref: string, digest: string) {
    super('E_LAYER_NOT_LOCAL', `${ref}: layer ${digest} was pulled lazily and its data is not local; serve the image (data comes on demand) or pull --full`, { exitStatus: 2 });
  }
}

/** Data of a lazy layer opened without remote sources: its metadata serves, its bytes do not. */
function missingData(ref: string, digest: string): LayerData {
  return {
    readInto: () => Promise.reject(new LayerNotLocalError(ref, digest)),
  };
}

/**
 * An image of the local store with its layers opened (metadata only) and their indexes
 * merged. A layer's data is its blob file when the store has it, otherwise whatever the
 * remote factory makes of it (lazily fetched chunks).
 */
export class LocalImage {
  private constructor(
    readonly ref: string,
    readonly manifestDescriptor: Descriptor,
    readonly manifest: ImageManifest,
    readonly config: ImageConfig,
    readonly layers: OpenLayer[],
    readonly index: MergedIndex,
    private readonly closers: (() => Promise<void>)[],
  ) {}

  /** `decoded` keeps compressed chunks of local blobs decoded (share one per process); default one of this image's own. */
  static async open(store: OciStore, ref: string, options: { remoteLayer?: RemoteLayerFactory; decoded?: DecodedChunks } = {}): Promise<LocalImage> {
    const { descriptor, manifest } = await store.resolve(ref);
    const origin = originOf(descriptor.annotations);
    const config = parseImageConfig(await store.readBlob(manifest.config.digest));
    const closers: (() => Promise<void>)[] = [];
    const layers: OpenLayer[] = [];
    try {
      for (const d of manifest.layers.filter((l) => l.mediaType === MEDIA_TYPE_LAYER)) {
        if (await store.hasBlob(d.digest)) {
          const file = await store.openBlob(d.digest);
          closers.push(() => file.close());
          const reader = await LayerReader.open(file, metaLocationOf(d));
          const data = reader.chunks.compressed ? new StoredBlobData(file, reader, (options.decoded ??= new DecodedChunks())) : file;
          layers.push({ descriptor: d, reader, data, local: true });
          continue;
        }
        const meta = await store.readLayerMeta(d.digest);
        if (!meta) throw new LayerNotLocalError(ref, d.digest);
        const reader = await openLayerFromMeta(d.size, meta);
        const data = options.remoteLayer?.(d, reader, layers.length, origin) ?? missingData(ref, d.digest);
        layers.push({ descriptor: d, reader, data, local: false });
      }
    } catch (e) {
      await Promise.allSettled(closers.map((c) => c()));
      throw e;
    }
    const index = MergedIndex.build(
      layers.map((l) => l.reader.extents),
      config.virtualSize,
    );
    return new LocalImage(ref, descriptor, manifest, config, layers, index, closers);
  }

  get virtualSize(): number {
    return this.config.virtualSize;
  }

  /** Where a lazily pulled image's missing data comes from. */
  get origin(): ImageOrigin | undefined {
    return originOf(this.manifestDescriptor.annotations);
  }

  async close(): Promise<void> {
    await Promise.allSettled(this.closers.map((c) => c()));
  }
}

/** Whether every layer blob of `ref` is in the store (no remote source needed to serve it). */
export async function isImageLocal(store: OciStore, ref: string): Promise<boolean> {
  const { manifest } = await store.resolve(ref);
  for (const l of manifest.layers) if (l.mediaType === MEDIA_TYPE_LAYER && !(await store.hasBlob(l.digest))) return false;
  return true;
}
