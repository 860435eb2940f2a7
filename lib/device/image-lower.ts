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
    const pieces = this.index.resolve(offset, length);
    if (pieces.length === 1 && pieces[0]!.kind !== 'data') return Buffer.alloc(length);
    const out = Buffer.allocUnsafe(length);
    const reads: Promise<void>[] = [];
    for (const p of pieces) {
      const at = p.offset - offset;
      if (p.kind === 'data') reads.push(this.layers[p.layer]!.readInto(p.physicalOffset, out, at, p.length));
      else out.fill(0, at, at + p.length);
    }
    await Promise.all(reads);
    return out;
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
}
