import { MalformedLayerError } from './errors.js';
import { ExtentKind, type ExtentList } from './extent.js';
import { EXTENT_ENTRY_SIZE, MAX_EXTENT_SECTORS, SECTOR_SIZE } from './layer-spec.js';
import { readU64, writeU64 } from './u64.js';

/**
 * Encodes an extent list as index entries (layer-v1.md §Extent index). Extents longer
 * than one entry can hold are split into consecutive entries.
 */
export function encodeExtentIndex(list: ExtentList): Buffer {
  let entries = 0;
  for (let i = 0; i < list.count; i++) entries += Math.ceil(list.length[i]! / SECTOR_SIZE / MAX_EXTENT_SECTORS);
  const b = Buffer.alloc(entries * EXTENT_ENTRY_SIZE);
  let at = 0;
  for (let i = 0; i < list.count; i++) {
    let vs = list.virtualOffset[i]! / SECTOR_SIZE;
    let ps = list.physicalOffset[i]! / SECTOR_SIZE;
    let left = list.length[i]! / SECTOR_SIZE;
    const kind = list.kind[i]!;
    while (left > 0) {
      const n = Math.min(left, MAX_EXTENT_SECTORS);
      writeU64(b, at, vs);
      writeU64(b, at + 8, kind === ExtentKind.Data ? ps : 0);
      b.writeUInt32LE(n, at + 16);
      b[at + 20] = kind;
      at += EXTENT_ENTRY_SIZE;
      vs += n;
      if (kind === ExtentKind.Data) ps += n;
      left -= n;
    }
  }
  return b;
}

export interface ExtentBounds {
  /** Extents may end at most here: the virtual size rounded up to a sector. */
  virtualLimit: number;
  /** Data extents must lie within [dataOffset, dataEnd). */
  dataOffset: number;
  dataEnd: number;
}

/** Decodes and validates an extent index; every rule broken has its own error code. */
export function decodeExtentIndex(b: Buffer, bounds: ExtentBounds): ExtentList {
  if (b.length % EXTENT_ENTRY_SIZE !== 0) throw new MalformedLayerError('E_LAYER_TRUNCATED', 'extent index length is not a whole number of entries');
  const count = b.length / EXTENT_ENTRY_SIZE;
  const virtualOffset = new Float64Array(count);
  const length = new Float64Array(count);
  const physicalOffset = new Float64Array(count);
  const kind = new Uint8Array(count);
  let prevEnd = 0;
  for (let i = 0, at = 0; i < count; i++, at += EXTENT_ENTRY_SIZE) {
    const v = readU64(b, at) * SECTOR_SIZE;
    const p = readU64(b, at + 8) * SECTOR_SIZE;
    const len = b.readUInt32LE(at + 16) * SECTOR_SIZE;
    const k = b[at + 20]!;
    if (k !== ExtentKind.Data && k !== ExtentKind.Zero) throw new MalformedLayerError('E_LAYER_BAD_FIELD', `extent ${i}: unknown kind ${k}`);
    if (b[at + 21] !== 0 || b[at + 22] !== 0 || b[at + 23] !== 0) throw new MalformedLayerError('E_LAYER_BAD_FIELD', `extent ${i}: reserved bytes not zero`);
    if (len === 0) throw new MalformedLayerError('E_LAYER_BAD_FIELD', `extent ${i}: zero length`);
    if (v < prevEnd) throw new MalformedLayerError('E_LAYER_EXTENT_ORDER', `extent ${i} at ${v} overlaps or precedes the extent ending at ${prevEnd}`);
    if (v + len > bounds.virtualLimit) throw new MalformedLayerError('E_LAYER_OUT_OF_BOUNDS', `extent ${i} ends at ${v + len}, past the virtual size`);
    if (k === ExtentKind.Data) {
      if (p < bounds.dataOffset || p + len > bounds.dataEnd) {
        throw new MalformedLayerError('E_LAYER_OUT_OF_BOUNDS', `extent ${i} points at [${p}, ${p + len}), outside the data region`);
      }
    } else if (p !== 0) {
      throw new MalformedLayerError('E_LAYER_BAD_FIELD', `zero extent ${i} has a physical offset`);
    }
    virtualOffset[i] = v;
    length[i] = len;
    physicalOffset[i] = p;
    kind[i] = k;
    prevEnd = v + len;
  }
  return { count, virtualOffset, length, physicalOffset, kind };
}
