import { TRAILER_SIZE } from '../../lib/format/layer-spec.js';

/** Broken blobs derived from good ones, each with the error code a reader must raise. */
export const MALFORMED: { name: string; error: string; make: (good: Map<string, Buffer>) => Buffer }[] = [
  { name: 'bad-trailer-magic', error: 'E_LAYER_BAD_MAGIC', make: (g) => flip(g.get('single-extent')!, -TRAILER_SIZE) },
  { name: 'truncated-tail', error: 'E_LAYER_BAD_MAGIC', make: (g) => g.get('single-extent')!.subarray(0, -7) },
  { name: 'future-major-version', error: 'E_LAYER_BAD_VERSION', make: (g) => set16(g.get('single-extent')!, -TRAILER_SIZE + 8, 2) },
  { name: 'index-digest-mismatch', error: 'E_LAYER_META_DIGEST', make: (g) => flip(g.get('mixed-kinds')!, metaOffset(g.get('mixed-kinds')!) + 2) },
  { name: 'index-past-end', error: 'E_LAYER_OUT_OF_BOUNDS', make: (g) => set16(g.get('mixed-kinds')!, -TRAILER_SIZE + 48, 0xfff0) },
];

function metaOffset(blob: Buffer): number {
  return blob.readUInt32LE(blob.length - TRAILER_SIZE + 48);
}

function flip(blob: Buffer, at: number): Buffer {
  const b = Buffer.from(blob);
  b[at < 0 ? b.length + at : at] ^= 0xff;
  return b;
}

function set16(blob: Buffer, at: number, v: number): Buffer {
  const b = Buffer.from(blob);
  b.writeUInt16LE(v, at < 0 ? b.length + at : at);
  return b;
}
