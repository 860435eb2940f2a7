import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { closest, editDistance } from './suggest.js';

/** Plain Levenshtein plus adjacent swaps, by brute recursion: the model the table-driven version must match. */
function modelDistance(a: string, b: string): number {
  if (a === '') return b.length;
  if (b === '') return a.length;
  const options = [modelDistance(a.slice(1), b) + 1, modelDistance(a, b.slice(1)) + 1, modelDistance(a.slice(1), b.slice(1)) + (a[0] === b[0] ? 0 : 1)];
  if (a.length > 1 && b.length > 1 && a[0] === b[1] && a[1] === b[0]) options.push(modelDistance(a.slice(2), b.slice(2)) + 1);
  return Math.min(...options);
}

test('edit distance: one per insertion, deletion, substitution or adjacent swap', () => {
  assert.is(editDistance('chunk-size', 'chunk-size'), 0);
  assert.is(editDistance('chunk-sise', 'chunk-size'), 1);
  assert.is(editDistance('read-onyl', 'read-only'), 1);
  assert.is(editDistance('uper', 'upper'), 1);
  assert.is(editDistance('upperr', 'upper'), 1);
  assert.is(editDistance('', 'json'), 4);
  assert.is(editDistance('abc', 'ca'), 3, 'OSA: a swapped pair is not edited again');
  assert.is(editDistance('kitten', 'sitting'), 3);
});

test('edit distance agrees with a brute-force model on random short strings', () => {
  let seed = 7;
  const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
  const word = () => Array.from({ length: rand(6) }, () => 'abc-'[rand(4)]).join('');
  for (let i = 0; i < 500; i++) {
    const a = word();
    const b = word();
    assert.is(editDistance(a, b), modelDistance(a, b), `${a} / ${b}`);
    assert.is(editDistance(a, b), editDistance(b, a), `symmetric: ${a} / ${b}`);
  }
});

test('closest: the nearest candidate within one edit per three characters', () => {
  const serve = ['upper', 'read-only', 'socket', 'listen', 'export', 'tls-cert', 'tls-key', 'metrics', 'prefetch-rate'];
  assert.is(closest('read-onyl', serve), 'read-only');
  assert.is(closest('prefetch-rat', serve), 'prefetch-rate');
  assert.is(closest('tls-ket', serve), 'tls-key');
  assert.is(closest('tls-cer', serve), 'tls-cert');
  assert.is(closest('uper', serve), 'upper');
  assert.is(closest('bogus-flag', serve), undefined);
  assert.is(closest('x', serve), undefined);
  assert.is(closest('compress', ['chunk-size']), undefined);
  assert.is(closest('sockt', []), undefined);
});

test('closest: equally near candidates give the first; a closer one wins wherever it is', () => {
  assert.is(closest('ab', ['ax', 'ay']), 'ax');
  assert.is(closest('listen', ['listens', 'listen']), 'listen');
  assert.is(closest('abcdef', ['abxxef', 'abcdxf']), 'abcdxf');
});

test.run();
