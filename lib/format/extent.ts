/** Kinds of extent in a layer index (format-spec/layer-v1.md §Extent index). */
export const enum ExtentKind {
  Data = 1,
  Zero = 2,
}

/**
 * A layer's extents, column-oriented so 100k-extent indexes stay compact and
 * cache-friendly. Sorted by virtualOffset, non-overlapping; all values bytes,
 * multiples of 512. physicalOffset is the byte offset in the layer blob (Data) or 0 (Zero).
 */
export interface ExtentList {
  readonly count: number;
  readonly virtualOffset: Float64Array;
  readonly length: Float64Array;
  readonly physicalOffset: Float64Array;
  readonly kind: Uint8Array;
}

/** One piece of a resolved read: `layer` is the stack position (0 = bottom) for data pieces, -1 otherwise. */
export interface Piece {
  offset: number;
  length: number;
  kind: 'data' | 'zero' | 'hole';
  layer: number;
  physicalOffset: number;
}
