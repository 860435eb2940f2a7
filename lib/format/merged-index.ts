import type { ExtentList, Piece } from './extent.js';
import { buildSegmentTable, SOURCE_ZERO, type SegmentTable } from './merged-index-build.js';
import { MergedIndexError } from './merged-index-errors.js';
import { SegmentLocator } from './merged-index-locator.js';

export type PieceKind = Piece['kind'];

/** A run of one kind in `status`: like a piece, but data of adjacent layers is one run. */
export interface StatusRun {
  offset: number;
  length: number;
  kind: PieceKind;
}

/**
 * The layers of an image merged into one flat table of segments covering
 * [0, virtualSize): each segment reads from one layer (at a fixed virtual-to-physical
 * delta), or is zero (a zero extent masking the layers below), or a hole (no layer
 * has it). Adjacent segments never share a source and delta, so a read spanning one
 * layer's contiguous data resolves to one piece.
 */
export class MergedIndex {
  private constructor(
    readonly virtualSize: number,
    private readonly table: SegmentTable,
    private readonly locator: SegmentLocator,
  ) {}

  /** `layers[0]` is the bottom of the stack. Extents reaching past `virtualSize` are clipped. */
  static build(layers: readonly ExtentList[], virtualSize: number): MergedIndex {
    const table = buildSegmentTable(layers, virtualSize);
    return new MergedIndex(virtualSize, table, new SegmentLocator(table.start));
  }

  get segmentCount(): number {
    return this.table.count;
  }

  /** Index of the segment containing `offset` (the hot path of every read). */
  lookup(offset: number): number {
    if (!(offset >= 0 && offset < this.virtualSize)) {
      throw new MergedIndexError('E_INDEX_OUT_OF_RANGE', `offset ${offset} is outside the image [0, ${this.virtualSize})`);
    }
    return this.locator.find(offset);
  }

  segmentStart(i: number): number {
    return this.table.start[i]!;
  }

  segmentEnd(i: number): number {
    return this.table.start[i + 1]!;
  }

  segmentKind(i: number): PieceKind {
    const source = this.table.source[i]!;
    return source >= 0 ? 'data' : source === SOURCE_ZERO ? 'zero' : 'hole';
  }

  /** The layer a data segment reads from; -1 for zero and hole segments. */
  segmentLayer(i: number): number {
    return Math.max(this.table.source[i]!, -1);
  }

  /** Where virtual `offset` (inside data segment i) lies in that segment's layer blob. */
  physicalOffset(i: number, offset: number): number {
    return offset + this.table.delta[i]!;
  }

  /** The pieces covering exactly [offset, offset + length), in order; none when length is 0. */
  resolve(offset: number, length: number): Piece[] {
    this.checkRange(offset, length);
    const pieces: Piece[] = [];
    const end = offset + length;
    const { start, source, delta } = this.table;
    for (let i = length > 0 ? this.locator.find(offset) : 0, pos = offset; pos < end; i++) {
      const pieceEnd = Math.min(start[i + 1]!, end);
      const s = source[i]!;
      pieces.push(
        s >= 0
          ? { offset: pos, length: pieceEnd - pos, kind: 'data', layer: s, physicalOffset: pos + delta[i]! }
          : { offset: pos, length: pieceEnd - pos, kind: s === SOURCE_ZERO ? 'zero' : 'hole', layer: -1, physicalOffset: 0 },
      );
      pos = pieceEnd;
    }
    return pieces;
  }

  /** Allocation status of [offset, offset + length) in order, for block-status replies. */
  status(offset: number, length: number): StatusRun[] {
    this.checkRange(offset, length);
    const runs: StatusRun[] = [];
    const end = offset + length;
    for (let i = length > 0 ? this.locator.find(offset) : 0, pos = offset; pos < end; i++) {
      const runEnd = Math.min(this.table.start[i + 1]!, end);
      const kind = this.segmentKind(i);
      const last = runs[runs.length - 1];
      // Only data segments of different layers can be neighbours of the same kind.
      if (last && last.kind === kind) last.length += runEnd - pos;
      else runs.push({ offset: pos, length: runEnd - pos, kind });
      pos = runEnd;
    }
    return runs;
  }

  private checkRange(offset: number, length: number): void {
    if (!(Number.isSafeInteger(offset) && Number.isSafeInteger(length) && offset >= 0 && length >= 0 && offset + length <= this.virtualSize)) {
      throw new MergedIndexError('E_INDEX_OUT_OF_RANGE', `range ${offset}+${length} is outside the image [0, ${this.virtualSize})`);
    }
  }
}
