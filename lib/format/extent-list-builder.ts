import { ExtentKind, type ExtentList } from './extent.js';

/** Appends extents into growable typed-array columns; `finish()` trims them to an ExtentList. */
export class ExtentListBuilder {
  private n = 0;
  private v = new Float64Array(64);
  private len = new Float64Array(64);
  private p = new Float64Array(64);
  private k = new Uint8Array(64);

  get count(): number {
    return this.n;
  }

  /** Appends, or extends the previous extent when this one continues it seamlessly. */
  push(virtualOffset: number, length: number, physicalOffset: number, kind: ExtentKind): void {
    const last = this.n - 1;
    if (
      last >= 0 &&
      this.k[last] === kind &&
      this.v[last]! + this.len[last]! === virtualOffset &&
      (kind === ExtentKind.Zero || this.p[last]! + this.len[last]! === physicalOffset)
    ) {
      this.len[last] = this.len[last]! + length;
      return;
    }
    if (this.n === this.v.length) this.grow();
    this.v[this.n] = virtualOffset;
    this.len[this.n] = length;
    this.p[this.n] = physicalOffset;
    this.k[this.n] = kind;
    this.n++;
  }

  finish(): ExtentList {
    return {
      count: this.n,
      virtualOffset: this.v.slice(0, this.n),
      length: this.len.slice(0, this.n),
      physicalOffset: this.p.slice(0, this.n),
      kind: this.k.slice(0, this.n),
    };
  }

  private grow(): void {
    const size = this.v.length * 2;
    const v = new Float64Array(size), len = new Float64Array(size), p = new Float64Array(size), k = new Uint8Array(size);
    v.set(this.v); len.set(this.len); p.set(this.p); k.set(this.k);
    this.v = v; this.len = len; this.p = p; this.k = k;
  }
}
