import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { seededRandom } from '../../integration/support/seeded-random.js';
import { ReplyBuffers, SLAB_MAX_PIECE, SLAB_SIZE } from './reply-buffers.js';

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

test('small replies given back: the slab is carved again from its start, so a QD1 client reuses the same memory', () => {
  const pool = new ReplyBuffers(8 * MiB);
  const first = pool.take(4096 + 16);
  pool.reuse(first);
  for (let i = 0; i < 1000; i++) {
    const b = pool.take(4096 + 16);
    assert.is(b.buffer, first.buffer);
    assert.is(b.byteOffset, first.byteOffset);
    pool.reuse(b);
  }
});

test('an earlier slab whose pieces are all back becomes a spare, used before new memory', () => {
  const pool = new ReplyBuffers(8 * MiB);
  const perSlab = SLAB_SIZE / SLAB_MAX_PIECE;
  const slabA = Array.from({ length: perSlab }, () => pool.take(SLAB_MAX_PIECE));
  const slabB = pool.take(SLAB_MAX_PIECE); // slab A is full: B starts
  assert.is.not(slabB.buffer, slabA[0]!.buffer);
  slabA.forEach((b) => pool.reuse(b));
  const more = Array.from({ length: perSlab }, () => pool.take(SLAB_MAX_PIECE)); // fills B, then needs a slab
  assert.is(more.at(-1)!.buffer, slabA[0]!.buffer);
  assert.is(more.at(-1)!.byteOffset, 0);
});

test('a piece never given back keeps its slab from reuse', () => {
  const pool = new ReplyBuffers(8 * MiB);
  const kept = pool.take(4096);
  const back = pool.take(4096);
  pool.reuse(back);
  assert.ok(pool.take(4096).byteOffset > kept.byteOffset, 'carved past the piece still out');
});

test('property: no byte of a small reply is handed out again while it is out, and slab memory is reused', () => {
  const rand = seededRandom(7);
  const pool = new ReplyBuffers(4 * MiB);
  const out: Buffer[] = [];
  const memories = new Set<ArrayBufferLike>();
  const sizes = [13, 28, 4096 + 16, 32 * 1024 + 16, SLAB_MAX_PIECE, SLAB_MAX_PIECE + 1, MiB + 16];
  for (let step = 0; step < 20000; step++) {
    // Up to ~48 replies in flight, some never given back (a closed connection drops its replies).
    if (out.length > rand(48)) {
      const [b] = out.splice(rand(out.length), 1);
      if (rand(2000) !== 0) pool.reuse(b!);
      continue;
    }
    const b = pool.take(sizes[rand(sizes.length)]!);
    const clash = out.find((o) => o.buffer === b.buffer && o.byteOffset < b.byteOffset + b.length && b.byteOffset < o.byteOffset + o.length);
    assert.not.ok(clash, `step ${step}: [${b.byteOffset}, +${b.length}) handed out while [${clash?.byteOffset}, +${clash?.length}) is out`);
    if (b.length <= SLAB_MAX_PIECE) memories.add(b.buffer);
    out.push(b);
  }
  // Without reuse the small takes here would carve ~400 slabs.
  assert.ok(memories.size <= 20, `${memories.size} slabs`);
});

test.run();
