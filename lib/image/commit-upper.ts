import { Upper } from '../device/upper/upper.js';
import { Owner } from '../device/upper/extent-map.js';
import { LayerWriter, type LayerSummary } from '../format/layer-writer.js';
import type { Descriptor } from '../oci/manifest.js';
import type { OciStore } from '../store/oci-store.js';
import { withCompressor, type CodecChoice } from './layer-compression.js';
import { layerDescriptor } from './layer-descriptor.js';
import { LocalImage } from './local-image.js';
import type { Progress } from './raw-scanner.js';
import { saveImage } from './save-image.js';

const COPY_SIZE = 4 << 20;

/**
 * `lazybd commit`: the upper's extents become a new top layer over its base image
 * (data as data, zeroed and trimmed ranges as zero extents), tagged as `ref`.
 * The upper is left as it was; serving the new image shows exactly what the device showed.
 * The same upper contents over the same base give the same layer.
 */
export async function commitUpper(
  store: OciStore,
  upperDir: string,
  base: LocalImage,
  ref: string,
  options: CommitOptions,
): Promise<CommitResult> {
  const upper = await Upper.open(upperDir, { virtualSize: base.virtualSize });
  try {
    return await commitOpenUpper(store, upper, base, ref, options);
  } finally {
    await upper.close();
  }
}

export interface CommitOptions {
  created: string;
  /** Default: stored as they are. */
  compress?: CodecChoice;
  onProgress?: Progress;
}

export interface CommitResult {
  manifest: Descriptor;
  layer: Descriptor;
  summary: LayerSummary;
}

/**
 * As commitUpper, for an upper already open (a daemon's clone): the caller keeps writes
 * away while it runs. The new image keeps the base's origin, so layers pulled lazily stay
 * fetchable from the registry they came from.
 */
export async function commitOpenUpper(store: OciStore, upper: Upper, base: LocalImage, ref: string, options: CommitOptions): Promise<CommitResult> {
  return store.lease(() => withCompressor(options.compress, async (compressor) => {
    const blob = await store.newBlob();
    try {
      const writer = new LayerWriter(blob, { virtualSize: base.virtualSize, chunkSize: base.config.chunkSize, compressor });
      const extents = [...upper.extents()];
      const total = extents.reduce((n, e) => n + e.length, 0);
      let done = 0;
      const buf = Buffer.allocUnsafe(COPY_SIZE);
      for (const e of extents) {
        if (e.owner === Owner.Zero) writer.addZero(e.offset, e.length);
        else {
          for (let at = 0; at < e.length; at += COPY_SIZE) {
            const n = Math.min(COPY_SIZE, e.length - at);
            await upper.readData(e.offset + at, n, buf);
            await writer.addData(e.offset + at, buf.subarray(0, n));
          }
        }
        done += e.length;
        options.onProgress?.(done, total);
      }
      const summary = await writer.finish();
      const layer = layerDescriptor(await blob.commit(), summary);
      const manifest = await saveImage(store, ref, [...base.manifest.layers, layer], {
        virtualSize: base.virtualSize,
        chunkSize: base.config.chunkSize,
        created: options.created,
        origin: base.origin,
      });
      return { manifest, layer, summary };
    } finally {
      await blob.abort();
    }
  }));
}
