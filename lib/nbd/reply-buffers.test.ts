import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { seededRandom } from '../../integration/support/seeded-random.js';
import { ReplyBuffers, SLAB_MAX_PIECE } from './reply-buffers.js';

const MiB = 1 << 20;

test('small replies are 8-byte aligned pieces of one slab that never overlap', () => {
  const pool = new ReplyBuffers(8 * MiB);
  const pieces = [4096 + 16, 13, 512, SLAB_MAX_PIECE].map((n) => pool.take(n));
  assert.equal(pieces.map((p) => p.length), [4096 + 16, 13, 512, SLAB_MAX_PIECE]);
  for (let i = 1; i < pieces.length; i++) {
    assert.is(pieces[i]!.buffer, pieces[0]!.buffer);
    assert.is(pieces[i]!.byteOffset % 8, 0);
    assert.ok(pieces[i]!.byteOffset >= pieces[i - 1]!.byteOffset + pieces[i - 1]!.length);
  }
});

test('a large reply given back is handed out again for the same capacity', () => {
  const pool = new ReplyBuffers(8 * MiB);
  const a = pool.take(MiB + 16);
  assert.is(a.buffer.byteLength, 2 * MiB);
  pool.reuse(a);
  assert.is(pool.pooled, 2 * MiB);
  const b = pool.take(MiB + 100);
  assert.is(b.buffer, a.buffer);
  assert.is(b.length, MiB + 100);
  assert.is(pool.pooled, 0);
});

test('a client that changes its request size finds room: sizes asked for least recently give way', () => {
  const pool = new ReplyBuffers(8 * MiB);
  // A copy with 256 KiB requests fills the pool...
  const copy = Array.from({ length: 32 }, () => pool.take(256 * 1024));
  copy.forEach((b) => pool.reuse(b));
  assert.is(pool.pooled, 8 * MiB);
  // ...then 1 MiB reads: their buffers are kept, so the next round reuses them.
  const first = Array.from({ length: 4 }, () => pool.take(MiB + 16));
  first.forEach((b) => pool.reuse(b));
  const second = Array.from({ length: 4 }, () => pool.take(MiB + 16));
  assert.equal(new Set(second.map((b) => b.buffer)), new Set(first.map((b) => b.buffer)));
  assert.ok(pool.pooled <= 8 * MiB);
});

test('property: never more than the limit pooled, and no buffer handed out twice while it is out', () => {
  const rand = seededRandom(12);
  const pool = new ReplyBuffers(4 * MiB);
  const out: Buffer[] = [];
  const sizes = [SLAB_MAX_PIECE + 1, 128 * 1024 + 16, 256 * 1024, MiB + 16, 3 * MiB, 5 * MiB];
  for (let step = 0; step < 5000; step++) {
    if (out.length && rand(2) === 0) {
      pool.reuse(out.splice(rand(out.length), 1)[0]!);
    } else {
      const b = pool.take(sizes[rand(sizes.length)]!);
      assert.not.ok(out.some((o) => o.buffer === b.buffer), `step ${step}: memory handed out twice`);
      out.push(b);
    }
    assert.ok(pool.pooled <= pool.limit, `step ${step}: ${pool.pooled} pooled`);
  }
});

test.run();
