import type { MergedIndex } from '../format/merged-index.js';
import type { LayerData } from '../source/layer-data.js';
import type { BlockStatusExtent } from './block-device.js';
import type { Lower } from './lower.js';

/**
 * The read-only image under the upper: the merged index says which layer owns each
 * byte, the layers' data supply them. Holes and zero extents are never read.
 */
export class ImageLower implements Lower {
  constructor(
    private readonly index: MergedIndex,
    private readonly layers: readonly LayerData[],
    readonly size: number,
  ) {}

  async read(offset: number, length: number): Promise<Buffer> {
    const out = Buffer.allocUnsafe(length);
    await this.readInto(offset, length, out, 0);
    return out;
  }

  readInto(offset: number, length: number, target: Buffer, at: number): Promise<void> {
    const index = this.index;
    if (length === 0) return Promise.resolve();
    const i = index.lookup(offset);
    // Most reads lie in one segment: answer them without piece objects or Promise.all.
    if (offset + length <= index.segmentEnd(i)) {
      const layer = index.segmentLayer(i);
      if (layer >= 0) return this.layers[layer]!.readInto(index.physicalOffset(i, offset), target, at, length);
      target.fill(0, at, at + length);
      return Promise.resolve();
    }
    return this.readPieces(offset, length, target, at);
  }

  status(offset: number, length: number): BlockStatusExtent[] {
    const out: BlockStatusExtent[] = [];
    for (const p of this.index.resolve(offset, length)) {
      const hole = p.kind !== 'data';
      const last = out[out.length - 1];
      if (last && last.hole === hole) last.length += p.length;
      else out.push({ length: p.length, hole, zero: hole });
    }
    return out;
  }

  async cache(offset: number, length: number): Promise<void> {
    const warms: Promise<void>[] = [];
    for (const p of this.index.resolve(offset, length)) {
      const warm = p.kind === 'data' ? this.layers[p.layer]!.warm : undefined;
      if (warm) warms.push(warm.call(this.layers[p.layer], p.physicalOffset, p.length));
    }
    await Promise.all(warms);
  }

  private async readPieces(offset: number, length: number, target: Buffer, at: number): Promise<void> {
    const reads: Promise<void>[] = [];
    for (const p of this.index.resolve(offset, length)) {
      const to = at + p.offset - offset;
      if (p.kind === 'data') reads.push(this.layers[p.layer]!.readInto(p.physicalOffset, target, to, p.length));
      else target.fill(0, to, to + p.length);
    }
    await Promise.all(reads);
  }
}
