import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ExtentKind, type ExtentList, type Piece } from './extent.js';
import { MergedIndex, type StatusRun } from './merged-index.js';
import { seededRandom } from '../../integration/support/seeded-random.js';

const SECTOR = 512;

interface Extent {
  v: number;
  len: number;
  p: number;
  kind: ExtentKind;
}

function list(extents: Extent[]): ExtentList {
  return {
    count: extents.length,
    virtualOffset: Float64Array.from(extents, (e) => e.v),
    length: Float64Array.from(extents, (e) => e.len),
    physicalOffset: Float64Array.from(extents, (e) => e.p),
    kind: Uint8Array.from(extents, (e) => e.kind),
  };
}

const data = (v: number, len: number, p: number): Extent => ({ v, len, p, kind: ExtentKind.Data });
const zero = (v: number, len: number): Extent => ({ v, len, p: 0, kind: ExtentKind.Zero });

/** Random sorted extents up to `limit` bytes; adjacent ones are sometimes physically contiguous, so they must coalesce. */
function randomLayer(rand: (n: number) => number, limit: number): Extent[] {
  const out: Extent[] = [];
  let v = rand(4) * SECTOR;
  let p = 4096;
  while (v < limit) {
    const len = Math.min((1 + rand(8)) * SECTOR, limit - v);
    if (rand(10) < 3) out.push(zero(v, len));
    else {
      out.push(data(v, len, p));
      p += len + (rand(2) ? 0 : rand(4) * SECTOR);
    }
    v += len + (rand(3) ? rand(6) * SECTOR : 0);
  }
  return out;
}

/** The byte-per-byte truth: which source (layer, -1 zero, -2 hole) and physical byte each virtual byte reads. */
function model(layers: Extent[][], size: number): { source: Int32Array; physical: Float64Array } {
  const source = new Int32Array(size).fill(-2);
  const physical = new Float64Array(size);
  layers.forEach((extents, layer) => {
    for (const e of extents) {
      for (let x = e.v; x < Math.min(e.v + e.len, size); x++) {
        source[x] = e.kind === ExtentKind.Data ? layer : -1;
        physical[x] = e.kind === ExtentKind.Data ? e.p + (x - e.v) : 0;
      }
    }
  });
  return { source, physical };
}

const sourceOf = (p: Piece): number => (p.kind === 'data' ? p.layer : p.kind === 'zero' ? -1 : -2);

function checkPieces(pieces: Piece[], offset: number, length: number, truth: ReturnType<typeof model>, label: string): void {
  let pos = offset;
  pieces.forEach((p, k) => {
    assert.is(p.offset, pos, `${label}: piece ${k} starts where the previous ended`);
    assert.ok(p.length > 0, `${label}: piece ${k} is not empty`);
    if (p.kind !== 'data') assert.equal([p.layer, p.physicalOffset], [-1, 0], `${label}: piece ${k} carries no layer`);
    for (let x = p.offset; x < p.offset + p.length; x++) {
      if (truth.source[x] !== sourceOf(p) || (p.kind === 'data' && truth.physical[x] !== p.physicalOffset + (x - p.offset))) {
        assert.unreachable(`${label}: byte ${x} reads ${JSON.stringify(p)}, model says source ${truth.source[x]} physical ${truth.physical[x]}`);
      }
    }
    const next = pieces[k + 1];
    if (next) {
      const continues = sourceOf(next) === sourceOf(p) && (p.kind !== 'data' || next.physicalOffset === p.physicalOffset + p.length);
      assert.not.ok(continues, `${label}: pieces ${k} and ${k + 1} should have been one`);
    }
    pos += p.length;
  });
  assert.is(pos, offset + length, `${label}: pieces cover the whole range`);
}

function checkStatus(runs: StatusRun[], offset: number, length: number, truth: ReturnType<typeof model>, label: string): void {
  const kindAt = (x: number): string => (truth.source[x]! >= 0 ? 'data' : truth.source[x] === -1 ? 'zero' : 'hole');
  let pos = offset;
  for (const r of runs) {
    assert.is(r.offset, pos, `${label}: status runs are contiguous`);
    for (let x = r.offset; x < r.offset + r.length; x++) if (kindAt(x) !== r.kind) assert.unreachable(`${label}: byte ${x} is ${kindAt(x)}, status says ${r.kind}`);
    assert.ok(pos === offset || kindAt(pos - 1) !== r.kind, `${label}: status runs of one kind are merged`);
    pos += r.length;
  }
  assert.is(pos, offset + length, `${label}: status covers the whole range`);
}

test('random stacks resolve byte for byte like the model', () => {
  for (let seed = 1; seed <= 2000; seed++) {
    const rand = seededRandom(seed);
    // Sometimes an unaligned size: layers then reach up to the next sector, past the image end.
    const size = (1 + rand(40)) * SECTOR - (rand(4) === 0 ? 1 + rand(SECTOR - 1) : 0);
    const limit = Math.ceil(size / SECTOR) * SECTOR;
    const layers = Array.from({ length: 1 + rand(6) }, () => randomLayer(rand, limit));
    const index = MergedIndex.build(layers.map(list), size);
    const truth = model(layers, size);
    for (let q = 0; q < 16; q++) {
      const offset = q === 0 ? 0 : rand(3) === 0 ? rand(size / SECTOR) * SECTOR : rand(size + 1);
      const length = q === 0 ? size : rand(2) === 0 ? size - offset : rand(size - offset + 1);
      const label = `seed ${seed}, ${layers.length} layers, size ${size}, range ${offset}+${length}`;
      checkPieces(index.resolve(offset, length), offset, length, truth, label);
      checkStatus(index.status(offset, length), offset, length, truth, label);
    }
  }
});

test('lookup returns the segment containing the offset', () => {
  for (let seed = 1; seed <= 300; seed++) {
    const rand = seededRandom(seed);
    const size = (1 + rand(40)) * SECTOR;
    const index = MergedIndex.build(Array.from({ length: 1 + rand(6) }, () => list(randomLayer(rand, size))), size);
    assert.is(index.segmentStart(0), 0);
    assert.is(index.segmentEnd(index.segmentCount - 1), size);
    for (let x = 0; x < size; x += 1 + rand(300)) {
      const i = index.lookup(x);
      assert.ok(index.segmentStart(i) <= x && x < index.segmentEnd(i), `seed ${seed}: offset ${x} not in segment ${i}`);
    }
  }
});

test('lookup over a large skewed table agrees with a binary search', () => {
  const rand = seededRandom(7);
  const layers = [0, 1, 2].map(() => {
    // Dense in the first 64 MiB of a 1 TiB image, then one lone extent: buckets are badly uneven.
    const extents = randomLayer(rand, 64 * 2 ** 20);
    extents.push(data(2 ** 39, 4096, 0));
    return list(extents);
  });
  const size = 2 ** 40;
  const index = MergedIndex.build(layers, size);
  assert.ok(index.segmentCount > 20_000, `${index.segmentCount} segments`);
  const starts = Float64Array.from({ length: index.segmentCount }, (_, i) => index.segmentStart(i));
  const search = (x: number): number => {
    let lo = 0;
    let hi = starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (starts[mid]! <= x) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  };
  for (let q = 0; q < 200_000; q++) {
    const x = q % 2 ? rand(64 * 2 ** 20 + 8192) : rand(2 ** 30) * 1024 + rand(1024);
    assert.is(index.lookup(x), search(x), `offset ${x}`);
  }
});

test('no layers: one hole; empty image: no segments', () => {
  const index = MergedIndex.build([], 4096);
  assert.is(index.segmentCount, 1);
  assert.equal(index.resolve(100, 1000), [{ offset: 100, length: 1000, kind: 'hole', layer: -1, physicalOffset: 0 }]);
  const empty = MergedIndex.build([list([]), list([])], 0);
  assert.is(empty.segmentCount, 0);
  assert.equal(empty.resolve(0, 0), []);
  assert.throws(() => empty.lookup(0), (e: { code: string }) => e.code === 'E_INDEX_OUT_OF_RANGE');
});

test('one extent covering everything, masked in the middle by a zero extent above', () => {
  const index = MergedIndex.build([list([data(0, 8192, 4096)]), list([]), list([zero(1024, 512)])], 8192);
  assert.is(index.segmentCount, 3);
  assert.equal(index.resolve(0, 8192), [
    { offset: 0, length: 1024, kind: 'data', layer: 0, physicalOffset: 4096 },
    { offset: 1024, length: 512, kind: 'zero', layer: -1, physicalOffset: 0 },
    { offset: 1536, length: 6656, kind: 'data', layer: 0, physicalOffset: 5632 },
  ]);
  assert.equal(index.resolve(8191, 1), [{ offset: 8191, length: 1, kind: 'data', layer: 0, physicalOffset: 12287 }]);
  assert.equal(index.resolve(8192, 0), []);
});

test('contiguous extents of one layer and zeros of different layers coalesce; data of different layers does not', () => {
  const bottom = list([data(0, 512, 4096), data(512, 512, 4608), zero(1024, 512), data(1536, 512, 0)]);
  const top = list([zero(1536, 512), data(2048, 512, 4608)]);
  const index = MergedIndex.build([bottom, top], 2560);
  assert.equal(
    index.resolve(0, 2560).map((p) => [p.kind, p.offset, p.length, p.layer]),
    [['data', 0, 1024, 0], ['zero', 1024, 1024, -1], ['data', 2048, 512, 1]],
  );
  assert.equal(index.status(0, 2560), [
    { offset: 0, length: 1024, kind: 'data' },
    { offset: 1024, length: 1024, kind: 'zero' },
    { offset: 2048, length: 512, kind: 'data' },
  ]);
});

test('extents ending at or past the virtual size are clipped to it', () => {
  const index = MergedIndex.build([list([data(0, 1024, 4096), zero(1024, 512)]), list([data(512, 1024, 0), data(2048, 512, 1024)])], 1000);
  assert.is(index.segmentCount, 2);
  assert.equal(index.resolve(0, 1000), [
    { offset: 0, length: 512, kind: 'data', layer: 0, physicalOffset: 4096 },
    { offset: 512, length: 488, kind: 'data', layer: 1, physicalOffset: 0 },
  ]);
  assert.is(index.segmentEnd(index.segmentCount - 1), 1000);
});

test('bad input and out-of-range queries are refused with their codes', () => {
  const code = (c: string) => (e: { code: string }) => e.code === c;
  assert.throws(() => MergedIndex.build([list([data(512, 512, 0), data(0, 512, 0)])], 4096), code('E_INDEX_EXTENT_ORDER'));
  assert.throws(() => MergedIndex.build([list([data(0, 1024, 0), data(512, 512, 0)])], 4096), code('E_INDEX_EXTENT_ORDER'));
  assert.throws(() => MergedIndex.build([list([data(-512, 512, 0)])], 4096), code('E_INDEX_EXTENT_ORDER'));
  assert.throws(() => MergedIndex.build([], -1), code('E_INDEX_BAD_SIZE'));
  assert.throws(() => MergedIndex.build([], 0.5), code('E_INDEX_BAD_SIZE'));
  const index = MergedIndex.build([], 4096);
  for (const [offset, length] of [[4096, 1], [4000, 97], [-1, 1], [0.5, 1], [0, -1], [Number.NaN, 1]] as const) {
    assert.throws(() => index.resolve(offset, length), code('E_INDEX_OUT_OF_RANGE'), `${offset}+${length}`);
  }
  assert.throws(() => index.lookup(4096), code('E_INDEX_OUT_OF_RANGE'));
  assert.throws(() => index.lookup(-1), code('E_INDEX_OUT_OF_RANGE'));
});

test.run();
