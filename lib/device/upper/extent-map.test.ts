import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ExtentMap, Owner } from './extent-map.js';

/** Deterministic PRNG so a failure reproduces. */
function rng(seed: number): (n: number) => number {
  let s = seed >>> 0;
  return (n) => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return Math.floor((s / 2 ** 32) * n);
  };
}

function runsOf(map: ExtentMap, start: number, end: number): [number, number, Owner][] {
  const runs: [number, number, Owner][] = [];
  map.forEachRun(start, end, (s, e, o) => runs.push([s, e, o]));
  return runs;
}

/** Expected runs of the model: maximal stretches of equal owner. */
function modelRuns(model: Uint8Array, start: number, end: number): [number, number, Owner][] {
  const runs: [number, number, Owner][] = [];
  for (let x = start; x < end; ) {
    let y = x + 1;
    while (y < end && model[y] === model[x]) y++;
    runs.push([x, y, model[x] as Owner]);
    x = y;
  }
  return runs;
}

test('random assigns match a per-unit model, across chunk splits and merges', () => {
  const size = 40_000;
  const rand = rng(7);
  for (const [ops, maxLen] of [
    [6000, 8],
    [3000, 3000],
  ] as const) {
    const map = new ExtentMap();
    const model = new Uint8Array(size);
    for (let k = 0; k < ops; k++) {
      const start = rand(size);
      const end = Math.min(size, start + 1 + rand(maxLen));
      const owner = (1 + rand(2)) as Owner;
      map.assign(start, end, owner);
      model.fill(owner, start, end);
      if (k % 500 === 499 || k === ops - 1) {
        assert.equal(runsOf(map, 0, size), modelRuns(model, 0, size), `after ${k + 1} ops`);
        for (let q = 0; q < 50; q++) {
          const s = rand(size);
          const e = s + 1 + rand(200);
          assert.equal(runsOf(map, s, Math.min(e, size)), modelRuns(model, s, Math.min(e, size)));
        }
      }
    }
    const fromExtents = [...map.extents()].map((x) => [x.offset, x.offset + x.length, x.owner]);
    assert.equal(fromExtents, modelRuns(model, 0, size).filter((r) => r[2] !== Owner.None));
  }
});

test('neighbours of equal owner merge into one extent', () => {
  const map = new ExtentMap();
  map.assign(0, 512, Owner.Data);
  map.assign(1024, 1536, Owner.Data);
  map.assign(512, 1024, Owner.Data);
  assert.equal([...map.extents()], [{ offset: 0, length: 1536, owner: Owner.Data }]);
  map.assign(256, 768, Owner.Zero);
  assert.equal(
    [...map.extents()].map((x) => [x.offset, x.length, x.owner]),
    [
      [0, 256, Owner.Data],
      [256, 512, Owner.Zero],
      [768, 768, Owner.Data],
    ],
  );
  assert.is(map.ownerAt(255), Owner.Data);
  assert.is(map.ownerAt(256), Owner.Zero);
  assert.is(map.ownerAt(5000), Owner.None);
  assert.equal(runsOf(map, 1000, 2000), [
    [1000, 1536, Owner.Data],
    [1536, 2000, Owner.None],
  ]);
});

test('100k random 4 KiB writes stay fast', () => {
  const map = new ExtentMap();
  const rand = rng(3);
  const t0 = performance.now();
  for (let k = 0; k < 100_000; k++) {
    const block = rand(1 << 20);
    map.assign(block * 4096, block * 4096 + 4096, Owner.Data);
  }
  const ms = performance.now() - t0;
  assert.ok(map.boundaryCount > 100_000, `boundaries ${map.boundaryCount}`);
  assert.ok(ms < 2000, `100k inserts took ${ms.toFixed(0)} ms`);
});

test.run();
