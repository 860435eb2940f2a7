import { randomBytes } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { LayerReader } from './layer-reader.js';
import { LayerWriter } from './layer-writer.js';
import { MergedIndex } from './merged-index.js';
import { BufferRandomAccess, type ByteSink } from './random-access.js';
import { seededRandom } from '../../integration/support/seeded-random.js';

/**
 * Random layers written and read back, compared with a byte model: every extent, every
 * chunk digest and every byte of the device as the reader (through the merged index) sees it.
 */
test('property: random layers round-trip through writer and reader', async () => {
  for (let seed = 1; seed <= 400; seed++) {
    const rnd = seededRandom(seed);
    const sectors = 1 + rnd(300);
    const virtualSize = sectors * 512 - (rnd(3) === 0 ? rnd(511) : 0);
    const chunkSize = 4096 << rnd(3);
    const model = Buffer.alloc(virtualSize);
    const owned = new Uint8Array(virtualSize); // 0 hole, 1 data, 2 zero
    const parts: Buffer[] = [];
    const sink: ByteSink = { write: async (d) => void parts.push(Buffer.from(d)) };
    const w = new LayerWriter(sink, { virtualSize, chunkSize });
    let at = 0;
    while (at < sectors) {
      at += rnd(8);
      if (at >= sectors) break;
      const n = 1 + rnd(Math.min(40, sectors - at));
      const start = at * 512;
      const end = Math.min((at + n) * 512, virtualSize);
      if (rnd(4) === 0) {
        w.addZero(start, end - start);
        owned.fill(2, start, end);
      } else {
        const data = randomBytes(end - start);
        if (rnd(5) === 0) data.fill(0, 0, Math.min(512, data.length)); // data that happens to be zero stays data
        await w.addData(start, data);
        data.copy(model, start);
        owned.fill(1, start, end);
      }
      at += n;
    }
    const summary = await w.finish();
    const blob = Buffer.concat(parts);
    assert.is(blob.length, summary.size, `seed ${seed}: size`);
    const r = await LayerReader.open(new BufferRandomAccess(blob));
    for (let c = 0; c < r.chunks.count; c++) await r.readChunk(c);
    const index = MergedIndex.build([r.extents], virtualSize);
    for (const p of index.resolve(0, virtualSize)) {
      const expectKind = p.kind === 'data' ? 1 : p.kind === 'zero' ? 2 : 0;
      for (let i = p.offset; i < p.offset + p.length; i++) {
        if (owned[i] !== expectKind) assert.unreachable(`seed ${seed}: byte ${i} is ${p.kind}, model says ${owned[i]}`);
      }
      if (p.kind === 'data') {
        const bytes = blob.subarray(p.physicalOffset, p.physicalOffset + p.length);
        if (!bytes.equals(model.subarray(p.offset, p.offset + p.length))) assert.unreachable(`seed ${seed}: data at ${p.offset} differs`);
      }
    }
  }
});

test.run();
