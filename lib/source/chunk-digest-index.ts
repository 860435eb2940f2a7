import type { ChunkTable } from '../format/chunk-table.js';

/**
 * Finds a layer's chunks by digest (when the cache reports a digest gone) without a map
 * of strings: chunk indices sorted by the digest's first 32 bits, 8 bytes per chunk.
 */
export class ChunkDigestIndex {
  private readonly prefixes: Uint32Array;
  private readonly order: Uint32Array;

  constructor(private readonly table: ChunkTable) {
    const prefixes = new Uint32Array(table.count);
    for (let i = 0; i < table.count; i++) prefixes[i] = table.digest(i).readUInt32BE(0);
    this.prefixes = prefixes;
    this.order = Uint32Array.from({ length: table.count }, (_, i) => i).sort((a, b) => prefixes[a]! - prefixes[b]!);
  }

  /** Indices of the chunks whose digest is `hex` (several when a layer repeats a chunk). */
  find(hex: string): number[] {
    const prefix = parseInt(hex.slice(0, 8), 16);
    let lo = 0;
    let hi = this.order.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.prefixes[this.order[mid]!]! < prefix) lo = mid + 1;
      else hi = mid;
    }
    const found: number[] = [];
    for (let k = lo; k < this.order.length && this.prefixes[this.order[k]!] === prefix; k++) {
      const i = this.order[k]!;
      if (this.table.digest(i).toString('hex') === hex) found.push(i);
    }
    return found;
  }
}
