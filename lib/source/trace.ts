import { ChunkBitset } from './chunk-bitset.js';
import { TraceFormatError } from './errors.js';

/** A chunk of an image: [layer index (bottom layer 0, manifest order), chunk index in that layer]. */
export type TraceEntry = readonly [layer: number, chunk: number];

/**
 * An access trace (format-spec/trace-v1.md): the chunks a workload (a boot, an app start)
 * read, in the order it first read them, so a later pull can prefetch them first.
 * JSON: {"version":1,"layers":["sha256:…",…],"entries":[[layer,chunk],…]}.
 * `layers` names the layer blobs the indices refer to, so a trace is only applied to the
 * image it was recorded on.
 */
export interface Trace {
  layers: string[];
  entries: TraceEntry[];
}

/** Notes the first read of each chunk, in order. Hook `hook(layer)` into that layer's LazyLayer (`onChunkRead`). */
export class TraceRecorder {
  private readonly seen: ChunkBitset[];
  private readonly recorded: TraceEntry[] = [];

  /** `layers`: blob digests, bottom first; `chunkCounts[i]`: chunks in layer i. */
  constructor(
    private readonly layers: readonly string[],
    chunkCounts: readonly number[],
  ) {
    this.seen = chunkCounts.map((n) => new ChunkBitset(n));
  }

  hook(layer: number): (chunk: number) => void {
    const seen = this.seen[layer];
    if (!seen) throw new RangeError(`layer ${layer} is not in the traced image`);
    return (chunk) => {
      if (seen.set(chunk)) this.recorded.push([layer, chunk]);
    };
  }

  get trace(): Trace {
    return { layers: [...this.layers], entries: [...this.recorded] };
  }
}

export function encodeTrace(trace: Trace): string {
  return JSON.stringify({ version: 1, layers: trace.layers, entries: trace.entries });
}

/**
 * Parses and checks a trace. With `chunkCounts` (chunks per layer of the image it is meant
 * for) it also checks that every entry exists there.
 */
export function decodeTrace(text: string, chunkCounts?: readonly number[]): Trace {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new TraceFormatError(`trace is not JSON: ${(err as Error).message}`);
  }
  if (typeof doc !== 'object' || doc === null) throw new TraceFormatError('trace is not a JSON object');
  const { version, layers, entries } = doc as { version?: unknown; layers?: unknown; entries?: unknown };
  if (version !== 1) throw new TraceFormatError(`unsupported trace version ${JSON.stringify(version)}`);
  if (!Array.isArray(layers) || !layers.every((l) => typeof l === 'string' && /^sha256:[0-9a-f]{64}$/.test(l))) {
    throw new TraceFormatError('trace "layers" must be an array of sha256 digests');
  }
  if (chunkCounts && chunkCounts.length !== layers.length) throw new TraceFormatError(`trace is for ${layers.length} layers, the image has ${chunkCounts.length}`);
  if (!Array.isArray(entries)) throw new TraceFormatError('trace "entries" must be an array');
  const seen = layers.map(() => new Set<number>());
  entries.forEach((e: unknown, k) => {
    const ok = Array.isArray(e) && e.length === 2 && e.every((n) => Number.isSafeInteger(n) && n >= 0) && e[0] < layers.length;
    if (!ok) throw new TraceFormatError(`trace entry ${k} is not [layer, chunk] within the ${layers.length} layers`);
    const [layer, chunk] = e as [number, number];
    if (chunkCounts && chunk >= (chunkCounts[layer] ?? 0)) throw new TraceFormatError(`trace entry ${k}: layer ${layer} has no chunk ${chunk}`);
    if (seen[layer]!.has(chunk)) throw new TraceFormatError(`trace entry ${k}: [${layer}, ${chunk}] repeated`);
    seen[layer]!.add(chunk);
  });
  return { layers: layers as string[], entries: entries as TraceEntry[] };
}
