/** What the upper holds over a byte range. */
export const enum Owner {
  /** Not owned: reads fall through to the lower image. */
  None = 0,
  /** Bytes in the data file at the same offset. */
  Data = 1,
  /** Reads return zeroes; masks the lower image. */
  Zero = 2,
}

export interface OwnedExtent {
  offset: number;
  length: number;
  owner: Owner.Data | Owner.Zero;
}

/** Boundaries per chunk before it splits; small enough that splices stay cheap. */
const MAX_CHUNK = 512;
/** A chunk this small merges into its right neighbour when they fit together. */
const MIN_CHUNK = MAX_CHUNK / 4;

interface Chunk {
  pos: number[];
  owner: Owner[];
}

/**
 * Ownership of a virtual address space as a sorted list of boundaries: from
 * `pos` up to the next boundary the owner is `owner`; before the first boundary
 * it is None. Kept canonical (neighbouring runs differ), so a run is an extent.
 * Stored as chunked sorted arrays: random small writes over 100k extents cost a
 * binary search and a splice of at most MAX_CHUNK numbers, never O(n).
 */
export class ExtentMap {
  private chunks: Chunk[] = [];
  /** firsts[c] === chunks[c].pos[0], for the binary search over chunks. */
  private firsts: number[] = [];
  private boundaries = 0;

  /** Boundaries held (about one per extent edge); a measure of the map's size. */
  get boundaryCount(): number {
    return this.boundaries;
  }

  /** Sets [start, end) to `owner`, replacing whatever was there. */
  assign(start: number, end: number, owner: Owner): void {
    if (end <= start) return;
    const before = this.ownerBefore(start);
    const after = this.ownerAt(end);
    this.removeBoundaries(start, end);
    if (before !== owner) this.insertBoundary(start, owner);
    if (after !== owner) this.insertBoundary(end, after);
  }

  /** Calls `visit` for consecutive runs covering exactly [start, end), None runs included. */
  forEachRun(start: number, end: number, visit: (start: number, end: number, owner: Owner) => void): void {
    if (end <= start) return;
    let c = this.lastChunkAtOrBelow(start);
    let i = -1;
    let owner = Owner.None;
    if (c >= 0) {
      const chunk = this.chunks[c]!;
      i = upperBound(chunk.pos, start, 0) - 1;
      owner = chunk.owner[i]!;
    } else c = 0;
    let cursor = start;
    // Step to the boundary after (c, i).
    i++;
    for (;;) {
      if (c < this.chunks.length && i >= this.chunks[c]!.pos.length) {
        c++;
        i = 0;
      }
      const next = c < this.chunks.length ? this.chunks[c]!.pos[i]! : Infinity;
      if (next >= end) {
        visit(cursor, end, owner);
        return;
      }
      visit(cursor, next, owner);
      cursor = next;
      owner = this.chunks[c]!.owner[i]!;
      i++;
    }
  }

  /** Every owned extent, in order. */
  *extents(): IterableIterator<OwnedExtent> {
    let prevPos = 0;
    let prevOwner = Owner.None;
    for (const chunk of this.chunks) {
      for (let i = 0; i < chunk.pos.length; i++) {
        const pos = chunk.pos[i]!;
        if (prevOwner !== Owner.None) yield { offset: prevPos, length: pos - prevPos, owner: prevOwner };
        prevPos = pos;
        prevOwner = chunk.owner[i]!;
      }
    }
  }

  /** Owner of the byte at x. */
  ownerAt(x: number): Owner {
    const c = this.lastChunkAtOrBelow(x);
    if (c < 0) return Owner.None;
    const chunk = this.chunks[c]!;
    return chunk.owner[upperBound(chunk.pos, x, 0) - 1]!;
  }

  /** Owner of the byte just below x. */
  private ownerBefore(x: number): Owner {
    const c = lowerBound(this.firsts, x, 0) - 1;
    if (c < 0) return Owner.None;
    const chunk = this.chunks[c]!;
    return chunk.owner[lowerBound(chunk.pos, x, 0) - 1]!;
  }

  /** Index of the last chunk whose first boundary is <= x, or -1. */
  private lastChunkAtOrBelow(x: number): number {
    return upperBound(this.firsts, x, 0) - 1;
  }

  /** Removes every boundary in [start, end] (both ends included). */
  private removeBoundaries(start: number, end: number): void {
    let c = Math.max(0, lowerBound(this.firsts, start, 0) - 1);
    let i = c < this.chunks.length ? lowerBound(this.chunks[c]!.pos, start, 0) : 0;
    while (c < this.chunks.length) {
      const chunk = this.chunks[c]!;
      const had = chunk.pos.length;
      if (i >= had) {
        c++;
        i = 0;
        continue;
      }
      const j = upperBound(chunk.pos, end, i);
      if (j === i) break;
      chunk.pos.splice(i, j - i);
      chunk.owner.splice(i, j - i);
      this.boundaries -= j - i;
      if (chunk.pos.length === 0) {
        this.chunks.splice(c, 1);
        this.firsts.splice(c, 1);
        i = 0;
        continue;
      }
      if (i === 0) this.firsts[c] = chunk.pos[0]!;
      if (j < had) break;
      c++;
      i = 0;
    }
    // Only chunks c-1 and c can have shrunk without being removed.
    this.mergeIfSmall(c);
    this.mergeIfSmall(c - 1);
  }

  private insertBoundary(x: number, owner: Owner): void {
    this.boundaries++;
    if (this.chunks.length === 0) {
      this.chunks.push({ pos: [x], owner: [owner] });
      this.firsts.push(x);
      return;
    }
    const c = Math.max(0, this.lastChunkAtOrBelow(x));
    const chunk = this.chunks[c]!;
    const i = lowerBound(chunk.pos, x, 0);
    chunk.pos.splice(i, 0, x);
    chunk.owner.splice(i, 0, owner);
    if (i === 0) this.firsts[c] = x;
    if (chunk.pos.length > MAX_CHUNK) {
      const half = chunk.pos.length >>> 1;
      const right: Chunk = { pos: chunk.pos.splice(half), owner: chunk.owner.splice(half) };
      this.chunks.splice(c + 1, 0, right);
      this.firsts.splice(c + 1, 0, right.pos[0]!);
    }
  }

  /** Keeps removals from leaving a long tail of near-empty chunks: joins c and c+1 when one is small and both fit. */
  private mergeIfSmall(c: number): void {
    const chunk = this.chunks[c];
    const next = this.chunks[c + 1];
    if (chunk === undefined || next === undefined) return;
    if (Math.min(chunk.pos.length, next.pos.length) >= MIN_CHUNK || chunk.pos.length + next.pos.length > MAX_CHUNK) return;
    for (let k = 0; k < next.pos.length; k++) {
      chunk.pos.push(next.pos[k]!);
      chunk.owner.push(next.owner[k]!);
    }
    this.chunks.splice(c + 1, 1);
    this.firsts.splice(c + 1, 1);
  }
}

/** First index >= from with a[index] >= x. */
function lowerBound(a: number[], x: number, from: number): number {
  let lo = from;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid]! < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** First index >= from with a[index] > x. */
function upperBound(a: number[], x: number, from: number): number {
  let lo = from;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid]! <= x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
