import { prefetchBytesDone, prefetchBytesTotal } from '../metrics/metrics.js';
import { sleep } from './abortable-sleep.js';
import type { FetchActivity } from './fetch-activity.js';
import type { LazyLayer } from './lazy-layer.js';
import { stderrSourceLogger, type SourceLogger } from './source-logger.js';
import { TokenBucket } from './token-bucket.js';
import type { TraceEntry } from './trace.js';

export interface PrefetcherOptions {
  /** Label for the progress metrics (image reference or name). */
  image: string;
  /** The image's layers by layer index (bottom first); undefined for layers already local. */
  layers: readonly (LazyLayer | undefined)[];
  /** Background transfer limit; 0 turns prefetch off. */
  rateBytesPerSec: number;
  /** Chunks to fetch first, in order (a recorded trace's entries). */
  trace?: readonly TraceEntry[];
  /** Fetches in flight at once. Default 4. */
  parallel?: number;
  /** Upper bound of one request. Default 1 MiB. */
  maxRunBytes?: number;
  /** Delay before retrying a failed fetch, doubled per failure up to 60 s. Default 1 s. */
  retryDelayMs?: number;
  onProgress?: (bytesDone: number, bytesTotal: number) => void;
  log?: SourceLogger;
}

/**
 * How prefetch ended: every chunk local; stopped (or rate 0); or a pass that added
 * nothing, which happens when the cache evicts as fast as prefetch fills it (pin the layers).
 */
export type PrefetchOutcome = 'complete' | 'stopped' | 'no-progress';

interface Task {
  layer: LazyLayer;
  first: number;
  count: number;
}


/**
 * Completes an image's lazy layers in the background, at the lowest priority: before each
 * request it waits until no on-demand fetch of its layers is in flight, and it paces
 * itself with a token bucket. Trace chunks go first (several requests in parallel), then
 * the rest of each layer in order, as runs of adjacent missing chunks. Starts at once.
 */
export class Prefetcher {
  readonly done: Promise<PrefetchOutcome>;
  private readonly layers: LazyLayer[];
  private readonly activities: FetchActivity[];
  private readonly stopper = new AbortController();
  private readonly stopped = new Promise<void>((resolve) => this.stopper.signal.addEventListener('abort', () => resolve(), { once: true }));
  private readonly bucket: TokenBucket;
  private readonly maxRunBytes: number;
  private readonly retryDelayMs: number;
  private readonly log: SourceLogger;

  constructor(private readonly options: PrefetcherOptions) {
    this.layers = options.layers.filter((l): l is LazyLayer => l !== undefined);
    this.activities = [...new Set(this.layers.map((l) => l.activity))];
    this.maxRunBytes = options.maxRunBytes ?? 1 << 20;
    this.bucket = new TokenBucket(options.rateBytesPerSec, this.maxRunBytes);
    this.retryDelayMs = options.retryDelayMs ?? 1000;
    this.log = options.log ?? stderrSourceLogger;
    this.done = this.run();
  }

  get bytesTotal(): number {
    return this.layers.reduce((sum, l) => sum + l.bytesTotal, 0);
  }

  get bytesDone(): number {
    return this.layers.reduce((sum, l) => sum + l.bytesLocal, 0);
  }

  /** Stops issuing requests; resolves at once, not waiting for fetches in flight (they complete in the background). */
  async stop(): Promise<void> {
    this.stopper.abort();
    await this.done;
  }

  private async run(): Promise<PrefetchOutcome> {
    this.report();
    if (this.options.rateBytesPerSec <= 0) return this.layers.every((l) => l.complete) ? 'complete' : 'stopped';
    for (let pass = 0; ; pass++) {
      if (this.layers.every((l) => l.complete)) return 'complete';
      const before = this.bytesDone;
      const tasks = pass === 0 ? concat(this.traceTasks(), this.layerTasks()) : this.layerTasks();
      await Promise.all(Array.from({ length: this.options.parallel ?? 4 }, () => this.worker(tasks)));
      if (this.stopper.signal.aborted) return 'stopped';
      if (this.bytesDone <= before && !this.layers.every((l) => l.complete)) {
        this.log.warn(`${this.options.image}: a full pass made no progress (is the chunk cache evicting this image?)`);
        return 'no-progress';
      }
    }
  }

  private async worker(tasks: Iterator<Task>): Promise<void> {
    const signal = this.stopper.signal;
    for (let next = tasks.next(); !next.done && !signal.aborted; next = tasks.next()) {
      const task = next.value;
      for (let failures = 0; !signal.aborted; failures++) {
        await Promise.race([Promise.all(this.activities.map((a) => a.idle())), this.stopped]);
        const bytes = missingBytes(task);
        if (bytes === 0 || signal.aborted) break;
        await this.bucket.take(bytes, signal);
        if (signal.aborted) break;
        try {
          // On stop, leave a slow fetch to finish in the background (client reads may share it).
          const fetching = task.layer.fetchChunks(task.first, task.count);
          fetching.catch(() => {});
          await Promise.race([fetching, this.stopped]);
          break;
        } catch (err) {
          const delay = Math.min(this.retryDelayMs * 2 ** failures, 60_000);
          this.log.warn(`${this.options.image}: chunks ${task.first}+${task.count} of ${task.layer.blob}: ${(err as Error).message}; retrying in ${delay} ms`);
          await sleep(delay, signal);
        }
      }
      this.report();
    }
  }

  /** Runs of adjacent trace entries (same layer, consecutive chunks) that are missing. */
  private *traceTasks(): Generator<Task> {
    const maxChunks = (layer: LazyLayer) => Math.max(1, Math.floor(this.maxRunBytes / layer.chunks.chunkSize));
    let run: Task | undefined;
    for (const [index, chunk] of this.options.trace ?? []) {
      const layer = this.options.layers[index];
      if (!layer || chunk >= layer.chunks.count || layer.isLocal(chunk)) continue;
      if (run && run.layer === layer && run.first + run.count === chunk && run.count < maxChunks(layer)) {
        run.count++;
        continue;
      }
      if (run) yield run;
      run = { layer, first: chunk, count: 1 };
    }
    if (run) yield run;
  }

  /** Runs of adjacent missing chunks, layer by layer, computed as they are taken (so chunks fetched meanwhile are skipped). */
  private *layerTasks(): Generator<Task> {
    for (const layer of this.layers) {
      const maxChunks = Math.max(1, Math.floor(this.maxRunBytes / layer.chunks.chunkSize));
      let i = 0;
      while (i < layer.chunks.count) {
        if (layer.isLocal(i)) {
          i++;
          continue;
        }
        const first = i;
        while (i < layer.chunks.count && i - first < maxChunks && !layer.isLocal(i)) i++;
        yield { layer, first, count: i - first };
      }
    }
  }

  private report(): void {
    const done = this.bytesDone;
    const total = this.bytesTotal;
    prefetchBytesDone.set({ image: this.options.image }, done);
    prefetchBytesTotal.set({ image: this.options.image }, total);
    this.options.onProgress?.(done, total);
  }
}

function missingBytes(task: Task): number {
  let bytes = 0;
  for (let i = task.first; i < task.first + task.count; i++) if (!task.layer.isLocal(i)) bytes += task.layer.chunks.length(i);
  return bytes;
}

function* concat<T>(...parts: Iterator<T>[]): Generator<T> {
  for (const part of parts) for (let next = part.next(); !next.done; next = part.next()) yield next.value;
}
