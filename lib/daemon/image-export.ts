import { ImageLower } from '../device/image-lower.js';
import { LayeredDevice } from '../device/layered-device.js';
import { Upper } from '../device/upper/upper.js';
import { LocalImage } from '../image/local-image.js';
import { traceDescriptorOf } from '../image/trace-blob.js';
import { LazyLayer } from '../source/lazy-layer.js';
import { Prefetcher } from '../source/prefetcher.js';
import { TraceRecorder, decodeTrace, type Trace } from '../source/trace.js';
import type { OciStore } from '../store/oci-store.js';
import type { LazySources } from './lazy-sources.js';
import type { ExportStatus } from './status-file.js';
import { bindUpper } from './upper-binding.js';

export interface ImageExportOptions {
  /** Directory of the writable upper; without one the export is read-only. */
  upperDir?: string;
  readOnly?: boolean;
  /** For lazily pulled images: cache and remote sources. */
  lazy?: LazySources;
  /** Background completion of lazy layers, bytes/s; 0 or absent: off. */
  prefetchRate?: number;
  /** Record the order of first chunk reads (`trace()` returns it). */
  recordTrace?: boolean;
}

/**
 * An image of the store opened as a block device: merged layers (local blobs or lazy
 * layers fed by cache and registry), an upper when writable, prefetch in the background.
 */
export class ImageExport {
  private constructor(
    readonly image: LocalImage,
    readonly device: LayeredDevice,
    private readonly upper: Upper | undefined,
    private readonly prefetcher: Prefetcher | undefined,
    private readonly recorder: TraceRecorder | undefined,
    private readonly prefetchRate: number,
    private prefetchState: ExportStatus['prefetch']['state'],
    /** Where missing chunks come from, for `lazybd status`. */
    private readonly remoteSources: string[],
  ) {}

  static async open(store: OciStore, ref: string, options: ImageExportOptions = {}): Promise<ImageExport> {
    const hooks: ((chunk: number) => void)[] = [];
    const onChunkRead = options.recordTrace ? (layer: number, chunk: number) => hooks[layer]?.(chunk) : undefined;
    const image = await LocalImage.open(store, ref, { remoteLayer: options.lazy?.layerFactory(onChunkRead) });
    let upper: Upper | undefined;
    try {
      const recorder = options.recordTrace ? new TraceRecorder(image.layers.map((l) => l.descriptor.digest), image.layers.map((l) => l.reader.chunks.count)) : undefined;
      if (recorder) image.layers.forEach((_, i) => (hooks[i] = recorder.hook(i)));
      if (options.upperDir) {
        await bindUpper(options.upperDir, { ref, manifestDigest: image.manifestDescriptor.digest, virtualSize: image.virtualSize });
        upper = await Upper.open(options.upperDir, { virtualSize: image.virtualSize });
      }
      const lower = new ImageLower(image.index, image.layers.map((l) => l.data), image.virtualSize);
      const device = new LayeredDevice({ lower, upper, readOnly: options.readOnly });
      const lazyLayers = image.layers.map((l) => (l.data instanceof LazyLayer ? l.data : undefined));
      let prefetcher: Prefetcher | undefined;
      let state: ExportStatus['prefetch']['state'] = lazyLayers.some(Boolean) ? 'off' : 'done';
      if (state === 'off' && options.prefetchRate) {
        prefetcher = new Prefetcher({ image: ref, layers: lazyLayers, rateBytesPerSec: options.prefetchRate, trace: (await storedTrace(store, image))?.entries });
        state = 'running';
      }
      const remote = [...(options.lazy?.options.supernodes?.members.map((m) => `supernode ${m.url}`) ?? []), `registry ${image.origin?.ref ?? '?'}`];
      const exp = new ImageExport(image, device, upper, prefetcher, recorder, prefetcher ? options.prefetchRate! : 0, state, remote);
      prefetcher?.done.then(
        (outcome) => (exp.prefetchState = outcome === 'complete' ? 'done' : outcome === 'stopped' ? 'off' : 'failed'),
        () => (exp.prefetchState = 'failed'),
      );
      return exp;
    } catch (e) {
      await upper?.close();
      await image.close();
      throw e;
    }
  }

  /** The chunks read so far, in first-read order (with `recordTrace`). */
  trace(): Trace | undefined {
    return this.recorder?.trace;
  }

  status(): Pick<ExportStatus, 'bytesLocal' | 'bytesTotal' | 'sources' | 'prefetch' | 'writable'> {
    let bytesLocal = 0;
    let bytesTotal = 0;
    for (const l of this.image.layers) {
      bytesTotal += l.reader.trailer.dataLength;
      bytesLocal += l.data instanceof LazyLayer ? l.data.bytesLocal : l.reader.trailer.dataLength;
    }
    const lazy = this.image.layers.some((l) => !l.local);
    return {
      bytesLocal,
      bytesTotal,
      sources: lazy ? ['cache', ...this.remoteSources] : ['local store'],
      prefetch: { state: this.prefetchState, rateBytesPerSec: this.prefetchRate },
      writable: !this.device.readOnly,
    };
  }

  /** Stops prefetch, flushes the upper and releases every file. */
  async close(): Promise<void> {
    await this.prefetcher?.stop();
    await this.upper?.close();
    for (const l of this.image.layers) if (l.data instanceof LazyLayer) l.data.close();
    await this.image.close();
  }
}

/** The trace stored with the image, if any, and only if it was recorded on this image's layers. */
async function storedTrace(store: OciStore, image: LocalImage): Promise<Trace | undefined> {
  const d = traceDescriptorOf(image.manifest.layers);
  if (!d || !(await store.hasBlob(d.digest))) return undefined;
  const trace = decodeTrace((await store.readBlob(d.digest)).toString('utf8'), image.layers.map((l) => l.reader.chunks.count));
  // A trace recorded on other layers would prefetch the wrong chunks first: better none.
  return trace.layers.every((digest, i) => digest === image.layers[i]?.descriptor.digest) ? trace : undefined;
}
