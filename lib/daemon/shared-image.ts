import { ImageLower } from '../device/image-lower.js';
import { chunkDedup } from '../image/chunk-dedup.js';
import { LocalImage } from '../image/local-image.js';
import { imageChunkDedup } from '../metrics/metrics.js';
import { traceDescriptorOf } from '../image/trace-blob.js';
import { LazyLayer } from '../source/lazy-layer.js';
import { Prefetcher } from '../source/prefetcher.js';
import { TraceRecorder, decodeTrace, type Trace } from '../source/trace.js';
import type { OciStore } from '../store/oci-store.js';
import type { DecodedChunks } from '../source/decoded-chunks.js';
import type { LazySources } from './lazy-sources.js';
import type { ExportStatus } from '../control/api.js';

export interface SharedImageOptions {
  /** For lazily pulled images: cache and remote sources. */
  lazy?: LazySources;
  /** Background completion of lazy layers, bytes/s; 0 or absent: off. */
  prefetchRate?: number;
  /** Compressed chunks of local layers, decoded (lazy layers use the LazySources' own). */
  decoded?: DecodedChunks;
  /** Record the order of first chunk reads (`trace()` returns it). */
  recordTrace?: boolean;
  /** Called when the last user lets go, before the files close: the owner forgets it then. */
  onClosed?: () => void;
}

/**
 * An image of the store opened once for every export of it on this host: merged layers
 * (local blobs or lazy layers fed by the one cache and source chain), prefetch, trace.
 * Clones of one image are exports over one SharedImage, so ten VMs fetch a chunk once.
 * Reference-counted: the last `release()` closes it.
 */
export class SharedImage {
  private users = 0;
  private closed: Promise<void> | undefined;

  private constructor(
    readonly image: LocalImage,
    readonly lower: ImageLower,
    private readonly prefetcher: Prefetcher | undefined,
    private readonly recorder: TraceRecorder | undefined,
    private readonly prefetchRate: number,
    private prefetchState: ExportStatus['prefetch']['state'],
    /** Where missing chunks come from, for `lazybd status`. */
    private readonly remoteSources: string[],
    private readonly onClosed: (() => void) | undefined,
  ) {}

  static async open(store: OciStore, ref: string, options: SharedImageOptions = {}): Promise<SharedImage> {
    const hooks: ((chunk: number) => void)[] = [];
    const onChunkRead = options.recordTrace ? (layer: number, chunk: number) => hooks[layer]?.(chunk) : undefined;
    const image = await LocalImage.open(store, ref, { remoteLayer: options.lazy?.layerFactory(onChunkRead), decoded: options.decoded });
    try {
      const recorder = options.recordTrace ? new TraceRecorder(image.layers.map((l) => l.descriptor.digest), image.layers.map((l) => l.reader.chunks.count)) : undefined;
      if (recorder) image.layers.forEach((_, i) => (hooks[i] = recorder.hook(i)));
      const lower = new ImageLower(image.index, image.layers.map((l) => l.data), image.virtualSize);
      const lazyLayers = image.layers.map((l) => (l.data instanceof LazyLayer ? l.data : undefined));
      let prefetcher: Prefetcher | undefined;
      let state: ExportStatus['prefetch']['state'] = lazyLayers.some(Boolean) ? 'off' : 'done';
      if (state === 'off' && options.prefetchRate) {
        prefetcher = new Prefetcher({ image: ref, layers: lazyLayers, rateBytesPerSec: options.prefetchRate, trace: (await storedTrace(store, image))?.entries });
        state = 'running';
      }
      const remote = [...(options.lazy?.options.supernodes?.members.map((m) => `supernode ${m.url}`) ?? []), `registry ${image.origin?.ref ?? '?'}`];
      const shared = new SharedImage(image, lower, prefetcher, recorder, prefetcher ? options.prefetchRate! : 0, state, remote, options.onClosed);
      imageChunkDedup.set({ image: ref }, chunkDedup(image.layers.map((l) => l.reader.chunks)).ratio);
      prefetcher?.done.then(
        (outcome) => (shared.prefetchState = outcome === 'complete' ? 'done' : outcome === 'stopped' ? 'off' : 'failed'),
        () => (shared.prefetchState = 'failed'),
      );
      return shared;
    } catch (e) {
      await image.close();
      throw e;
    }
  }

  get manifestDigest(): string {
    return this.image.manifestDescriptor.digest;
  }

  acquire(): this {
    if (this.closed) throw new Error('SharedImage acquired after its last release');
    this.users++;
    return this;
  }

  /** Drops one user; the last one stops prefetch and releases every file. */
  async release(): Promise<void> {
    if (--this.users > 0) return;
    this.onClosed?.();
    await (this.closed ??= this.close());
  }

  /** The chunks read so far, in first-read order (with `recordTrace`). */
  trace(): Trace | undefined {
    return this.recorder?.trace;
  }

  status(): Pick<ExportStatus, 'bytesLocal' | 'bytesTotal' | 'sources' | 'prefetch'> {
    let bytesLocal = 0;
    let bytesTotal = 0;
    for (const l of this.image.layers) {
      bytesTotal += l.reader.chunks.storedLength;
      bytesLocal += l.data instanceof LazyLayer ? l.data.bytesLocal : l.reader.chunks.storedLength;
    }
    const lazy = this.image.layers.some((l) => !l.local);
    return {
      bytesLocal,
      bytesTotal,
      sources: lazy ? ['cache', ...this.remoteSources] : ['local store'],
      prefetch: { state: this.prefetchState, rateBytesPerSec: this.prefetchRate },
    };
  }

  private async close(): Promise<void> {
    imageChunkDedup.remove({ image: this.image.ref });
    await this.prefetcher?.stop();
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
