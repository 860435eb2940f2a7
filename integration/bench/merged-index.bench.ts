// Merged index benchmark: build time, segment count, lookups/s and resolve()/s for
// 8 layers × 100k random extents over a 64 GiB image. Run by hand:
//   npx tsc -p . && node dist/integration/bench/merged-index.bench.js
import os from 'node:os';
import { ExtentKind, type ExtentList } from '../../lib/format/extent.js';
import { MergedIndex } from '../../lib/format/merged-index.js';
import { seededRandom } from '../support/seeded-random.js';

const LAYERS = 8;
const EXTENTS_PER_LAYER = 100_000;
const VIRTUAL_SIZE = 64 * 2 ** 30;
const SECTOR = 512;
const QUERIES = 1 << 22;
const ROUNDS = 5;

/** Extents of 4 KiB–512 KiB at random gaps spread over the whole image; one in ten is a zero extent. */
function randomLayer(rand: (n: number) => number): ExtentList {
  const meanGap = VIRTUAL_SIZE / EXTENTS_PER_LAYER - 258 * 1024;
  const virtualOffset = new Float64Array(EXTENTS_PER_LAYER);
  const length = new Float64Array(EXTENTS_PER_LAYER);
  const physicalOffset = new Float64Array(EXTENTS_PER_LAYER);
  const kind = new Uint8Array(EXTENTS_PER_LAYER);
  let v = 0;
  let p = 4096;
  let count = 0;
  for (; count < EXTENTS_PER_LAYER; count++) {
    v += rand((2 * meanGap) / SECTOR) * SECTOR;
    const len = (1 + rand(128)) * 4096;
    if (v + len > VIRTUAL_SIZE) break;
    virtualOffset[count] = v;
    length[count] = len;
    kind[count] = rand(10) === 0 ? ExtentKind.Zero : ExtentKind.Data;
    if (kind[count] === ExtentKind.Data) {
      physicalOffset[count] = p;
      p += len;
    }
    v += len;
  }
  return { count, virtualOffset, length, physicalOffset, kind };
}

/**
 * Best of `rounds`, timed in CPU time (user + system) as well as wall time: on a
 * shared machine CPU time is the fairer figure, wall time the one a client sees.
 */
function best<T>(rounds: number, run: () => T): { ms: number; wallMs: number; result: T } {
  let ms = Infinity;
  let wallMs = Infinity;
  let result!: T;
  for (let r = 0; r < rounds; r++) {
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    result = run();
    wallMs = Math.min(wallMs, performance.now() - t0);
    const cpu = process.cpuUsage(cpu0);
    ms = Math.min(ms, (cpu.user + cpu.system) / 1000);
  }
  return { ms, wallMs, result };
}

const rand = seededRandom(42);
const layers = Array.from({ length: LAYERS }, () => randomLayer(rand));
const extents = layers.reduce((n, l) => n + l.count, 0);

const build = best(3, () => MergedIndex.build(layers, VIRTUAL_SIZE));
const index = build.result;

const offsets = Float64Array.from({ length: QUERIES }, () => rand(VIRTUAL_SIZE));
const lookup = best(ROUNDS, () => {
  let sum = 0;
  for (let i = 0; i < QUERIES; i++) sum += index.lookup(offsets[i]!);
  return sum;
});

// The same question answered by a plain binary search (std::lower_bound's shape), for scale.
const starts = Float64Array.from({ length: index.segmentCount }, (_, i) => index.segmentStart(i));
const binarySearch = best(ROUNDS, () => {
  let sum = 0;
  for (let q = 0; q < QUERIES; q++) {
    const x = offsets[q]!;
    let lo = 0;
    let hi = starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (starts[mid]! <= x) lo = mid;
      else hi = mid - 1;
    }
    sum += lo;
  }
  return sum;
});
if (binarySearch.result !== lookup.result) throw new Error('lookup and binary search disagree');

function resolveRate(readSize: number): { perSecond: number; wallPerSecond: number; piecesPerRead: number } {
  const reads = QUERIES / 4;
  const at = Float64Array.from({ length: reads }, () => rand((VIRTUAL_SIZE - readSize) / 4096) * 4096);
  const run = best(ROUNDS, () => {
    let pieces = 0;
    for (let i = 0; i < reads; i++) pieces += index.resolve(at[i]!, readSize).length;
    return pieces;
  });
  return { perSecond: reads / (run.ms / 1000), wallPerSecond: reads / (run.wallMs / 1000), piecesPerRead: run.result / reads };
}
const resolve4k = resolveRate(4096);
const resolve64k = resolveRate(65536);

const mega = (perSecond: number): string => `${(perSecond / 1e6).toFixed(1)} M/s`;
const rates = (count: number, run: { ms: number; wallMs: number }): string =>
  `${mega(count / (run.ms / 1000))} CPU time, ${mega(count / (run.wallMs / 1000))} wall`;
console.log(`machine        ${os.cpus()[0]?.model ?? 'unknown'}, ${os.cpus().length} CPUs, node ${process.version}`);
console.log(`layers         ${LAYERS} × ${EXTENTS_PER_LAYER} random extents (${extents} total) over ${VIRTUAL_SIZE / 2 ** 30} GiB`);
console.log(`load average   ${os.loadavg()[0]!.toFixed(1)}`);
console.log(`build          ${build.ms.toFixed(0)} ms CPU time (${build.wallMs.toFixed(0)} ms wall) → ${index.segmentCount} merged segments`);
console.log(`lookup         ${rates(QUERIES, lookup)}`);
console.log(`binary search  ${rates(QUERIES, binarySearch)} (same question, same starts, for scale)`);
for (const [name, r] of [['resolve 4 KiB ', resolve4k], ['resolve 64 KiB', resolve64k]] as const) {
  console.log(`${name} ${mega(r.perSecond)} CPU time, ${mega(r.wallPerSecond)} wall, ${r.piecesPerRead.toFixed(2)} pieces/read`);
}
