import { MalformedLayerError } from './errors.js';
import { LayerReader, type MetaLocation } from './layer-reader.js';
import type { RandomAccess } from './random-access.js';

/**
 * A layer blob of which only the metadata tail is at hand (a lazily pulled layer), and
 * perhaps its header: the reader can open it (and check the header); any read of the
 * data region is a programming error.
 */
export class MetaRandomAccess implements RandomAccess {
  constructor(
    readonly size: number,
    private readonly meta: MetaLocation,
    private readonly bytes: Buffer,
    private readonly header?: Buffer,
  ) {
    if (bytes.length !== meta.length || meta.offset + meta.length !== size) {
      throw new MalformedLayerError('E_LAYER_TRUNCATED', `layer metadata of ${bytes.length} bytes does not match its location ${meta.offset}+${meta.length} in a ${size}-byte blob`);
    }
  }

  async read(offset: number, length: number): Promise<Buffer> {
    if (this.header && offset + length <= this.header.length) return this.header.subarray(offset, offset + length);
    const at = offset - this.meta.offset;
    if (at < 0 || at + length > this.bytes.length) throw new RangeError(`[${offset}, ${offset + length}) is outside the layer metadata held locally`);
    return this.bytes.subarray(at, at + length);
  }
}

/** Opens a layer of which only the metadata tail (index, chunk table, trailer) is at hand. */
export function openLayerFromMeta(blobSize: number, meta: Buffer, header?: Buffer): Promise<LayerReader> {
  const location = { offset: blobSize - meta.length, length: meta.length };
  return LayerReader.open(new MetaRandomAccess(blobSize, location, meta, header), location);
}
