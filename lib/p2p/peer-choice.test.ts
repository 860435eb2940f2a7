import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { seededRandom } from '../../integration/support/seeded-random.js';
import { choosePeer } from './peer-choice.js';

const draws = (scores: number[], n: number, seed: number): number[] => {
  const rand = seededRandom(seed);
  const peers = scores.map((score, i) => ({ score, i }));
  const counts = scores.map(() => 0);
  for (let k = 0; k < n; k++) counts[choosePeer(peers, () => rand(2 ** 32) / 2 ** 32)!.i]!++;
  return counts;
};

test('no peers, one peer', () => {
  assert.is(choosePeer([], Math.random), undefined);
  const only = { score: 1e9 };
  assert.is(choosePeer([only], Math.random), only);
});

test('equal peers share the requests evenly', () => {
  const counts = draws([2, 2, 2, 2], 8000, 1);
  for (const c of counts) assert.ok(Math.abs(c - 2000) < 200, `counts ${counts.join(', ')}`);
});

test('shares follow 1/score: twice the latency × load, half the requests; a stalled peer next to none', () => {
  const [fast, slow, stalled] = draws([1, 2, 1000], 9000, 2);
  assert.ok(Math.abs(fast! / slow! - 2) < 0.25, `fast ${fast}, slow ${slow}`);
  assert.ok(stalled! < 30, `stalled peer got ${stalled}`);
});

test.run();
