import { ExtentKind, type ExtentList } from './extent.js';
import { MergedIndexError } from './merged-index-errors.js';

/** Segment sources that are not a layer (layers are 0 and up). */
export const SOURCE_ZERO = -1;
export const SOURCE_HOLE = -2;

/**
 * The merged segment table: segment i covers [start[i], start[i+1]) and reads from
 * `source[i]` (a layer, SOURCE_ZERO or SOURCE_HOLE) at physical = virtual + delta[i].
 * `start` has one extra entry, the virtual size, so every segment's end is at hand.
 */
export interface SegmentTable {
  readonly count: number;
  readonly start: Float64Array;
  readonly source: Int32Array;
  readonly delta: Float64Array;
}

/**
 * Merges layer indexes top-down: the top layer's extents are taken whole, each lower
 * layer only fills the gaps left above it, and what stays uncovered becomes holes.
 * Each pass is one linear merge of two sorted lists, so the whole build is
 * O(layers × segments) with no sorting.
 */
export function buildSegmentTable(layers: readonly ExtentList[], virtualSize: number): SegmentTable {
  if (!Number.isSafeInteger(virtualSize) || virtualSize < 0) {
    throw new MergedIndexError('E_INDEX_BAD_SIZE', `virtual size ${virtualSize} is not a non-negative safe integer`);
  }
  let runs = new Runs(0);
  for (let l = layers.length - 1; l >= 0; l--) runs = overlayLayer(runs, layers[l]!, l, virtualSize);
  const filler = new GapFiller(runs, 1);
  filler.fill(0, virtualSize, SOURCE_HOLE, 0);
  return filler.finish().toTable(virtualSize);
}

/** Lays one layer under `upper`: its extents (clipped to the virtual size) fill upper's gaps. */
function overlayLayer(upper: Runs, layer: ExtentList, index: number, virtualSize: number): Runs {
  const filler = new GapFiller(upper, layer.count);
  let prevEnd = 0;
  for (let e = 0; e < layer.count; e++) {
    const start = layer.virtualOffset[e]!;
    const length = layer.length[e]!;
    if (!(start >= prevEnd && length >= 0)) {
      throw new MergedIndexError('E_INDEX_EXTENT_ORDER', `layer ${index}, extent ${e} (${start}+${length}) is out of order, overlapping or negative`);
    }
    prevEnd = start + length;
    if (layer.kind[e] === ExtentKind.Data) {
      filler.fill(start, Math.min(prevEnd, virtualSize), index, layer.physicalOffset[e]! - start);
    } else {
      filler.fill(start, Math.min(prevEnd, virtualSize), SOURCE_ZERO, 0);
    }
  }
  return filler.finish();
}

/**
 * Copies the runs of an upper level to a new list while filling the gaps between
 * them with pieces of lower ranges. Ranges must be offered in ascending order.
 */
class GapFiller {
  private readonly out: Runs;
  private next = 0;
  /** Everything below this offset has been written to `out`, or is a gap no later range may fill. */
  private covered = 0;

  /** `ranges` bounds how many fill() calls come; each adds at most one gap beyond those upper's runs delimit. */
  constructor(
    private readonly upper: Runs,
    ranges: number,
  ) {
    this.out = new Runs(2 * upper.count + ranges);
  }

  fill(start: number, end: number, source: number, delta: number): void {
    const upper = this.upper;
    let pos = Math.max(start, this.covered);
    if (pos >= end) return;
    while (pos < end) {
      while (this.next < upper.count && upper.end[this.next]! <= pos) this.out.copy(upper, this.next++);
      if (this.next < upper.count && upper.start[this.next]! <= pos) {
        pos = upper.end[this.next]!;
        this.out.copy(upper, this.next++);
        continue;
      }
      const gapEnd = this.next < upper.count ? Math.min(end, upper.start[this.next]!) : end;
      this.out.push(pos, gapEnd, source, delta);
      pos = gapEnd;
    }
    this.covered = pos;
  }

  finish(): Runs {
    while (this.next < this.upper.count) this.out.copy(this.upper, this.next++);
    return this.out;
  }
}

/** Sorted, non-overlapping runs (possibly with gaps) in fixed-capacity columns. */
class Runs {
  count = 0;
  readonly start: Float64Array;
  readonly end: Float64Array;
  readonly source: Int32Array;
  readonly delta: Float64Array;

  constructor(capacity: number) {
    this.start = new Float64Array(capacity);
    this.end = new Float64Array(capacity);
    this.source = new Int32Array(capacity);
    this.delta = new Float64Array(capacity);
  }

  /** Appends, coalescing with the last run when it continues it (same source, physically contiguous). */
  push(start: number, end: number, source: number, delta: number): void {
    const last = this.count - 1;
    if (last >= 0 && this.end[last] === start && this.source[last] === source && this.delta[last] === delta) {
      this.end[last] = end;
      return;
    }
    this.start[this.count] = start;
    this.end[this.count] = end;
    this.source[this.count] = source;
    this.delta[this.count] = delta;
    this.count++;
  }

  copy(from: Runs, i: number): void {
    this.push(from.start[i]!, from.end[i]!, from.source[i]!, from.delta[i]!);
  }

  /** Gap-free runs covering [0, virtualSize) as a segment table. */
  toTable(virtualSize: number): SegmentTable {
    const start = new Float64Array(this.count + 1);
    start.set(this.start.subarray(0, this.count));
    start[this.count] = virtualSize;
    return { count: this.count, start, source: this.source.slice(0, this.count), delta: this.delta.slice(0, this.count) };
  }
}
