/**
 * Finds the segment containing an offset in O(1) expected time: the virtual space is
 * cut into 2^k equal buckets (about one per segment), and `first[b]` is the segment
 * holding bucket b's first byte, so the answer lies in [first[b], first[b+1]].
 * That range is usually 0 or 1 segments wide; skewed layouts fall back to a binary
 * search inside it, never worse than one over the whole table.
 */
export class SegmentLocator {
  private readonly first: Int32Array;
  /** 1 / bucket size; a power of two, so offset * scale is exact. */
  private readonly scale: number;

  /** `start` holds the segment starts (ascending, start[0] = 0) plus the end as last entry. */
  constructor(private readonly start: Float64Array) {
    const count = start.length - 1;
    const size = start[count]!;
    const buckets = 2 ** Math.ceil(Math.log2(Math.max(count, 1)));
    let bucketSize = 1;
    while (bucketSize * buckets < size) bucketSize *= 2;
    this.scale = 1 / bucketSize;
    this.first = new Int32Array(buckets + 1);
    for (let b = 0, i = 0; b <= buckets; b++) {
      const at = b * bucketSize;
      while (i < count - 1 && start[i + 1]! <= at) i++;
      this.first[b] = i;
    }
  }

  /** Index of the segment containing `offset`, which must lie in [0, end). */
  find(offset: number): number {
    const b = Math.floor(offset * this.scale);
    const start = this.start;
    let lo = this.first[b]!;
    let hi = this.first[b + 1]!;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (start[mid]! <= offset) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }
}
