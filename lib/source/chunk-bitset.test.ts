import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { seededRandom } from '../../integration/support/seeded-random.js';
import { ChunkBitset } from './chunk-bitset.js';

test('random set/clear against a Set: has, count, hasAll, and the bytes peers exchange', () => {
  for (let seed = 1; seed <= 20; seed++) {
    const rand = seededRandom(seed);
    const size = 1 + rand(300);
    const bits = new ChunkBitset(size);
    const model = new Set<number>();
    for (let op = 0; op < 400; op++) {
      const i = rand(size);
      if (rand(3) === 0) assert.is(bits.clear(i), model.delete(i), `seed ${seed}: clear ${i}`);
      else assert.is(bits.set(i), !model.has(i) && model.add(i) !== undefined, `seed ${seed}: set ${i}`);
      assert.is(bits.count, model.size);
      const first = rand(size);
      const count = rand(size - first + 2);
      const all = first + count <= size && Array.from({ length: count }, (_, k) => first + k).every((k) => model.has(k));
      assert.is(bits.hasAll(first, count), all, `seed ${seed}: hasAll(${first}, ${count})`);
    }
    const bytes = bits.toBytes();
    assert.is(bytes.length, Math.ceil(size / 8));
    for (let i = 0; i < size; i++) assert.is((bytes[i >> 3]! & (1 << (i & 7))) !== 0, model.has(i), `seed ${seed}: bit ${i} of the bytes`);
    const back = ChunkBitset.fromBytes(size, bytes);
    assert.is(back.count, model.size);
    for (let i = 0; i < size; i++) assert.is(back.has(i), model.has(i));
  }
});

test('fromBytes ignores bits past the size', () => {
  const b = ChunkBitset.fromBytes(10, Buffer.from([0xff, 0xff]));
  assert.is(b.count, 10);
  assert.not.ok(b.hasAll(0, 11));
});

test.run();
