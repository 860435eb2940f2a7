import { createHash, randomBytes } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { codeOf } from '../../integration/support/error-code.js';
import { ChunkTable } from './chunk-table.js';
import { ExtentKind, type ExtentList } from './extent.js';
import { encodeExtentIndex } from './extent-index.js';
import { encodeHeader } from './header.js';
import { LayerReader } from './layer-reader.js';
import { TRAILER_SIZE, VERSION_MINOR } from './layer-spec.js';
import { LayerWriter } from './layer-writer.js';
import { BufferRandomAccess, type ByteSink } from './random-access.js';
import { encodeTrailer } from './trailer.js';

class CollectSink implements ByteSink {
  parts: Buffer[] = [];
  async write(d: Buffer) {
    this.parts.push(Buffer.from(d));
  }
  bytes() {
    return Buffer.concat(this.parts);
  }
}

async function sampleLayer(chunkSize = 4096, data = randomBytes(12288)): Promise<{ blob: Buffer; data: Buffer }> {
  const sink = new CollectSink();
  const w = new LayerWriter(sink, { virtualSize: 1 << 20, chunkSize });
  await w.addData(0, data.subarray(0, 4096));
  w.addZero(8192, 4096);
  await w.addData(65536, data.subarray(4096));
  await w.finish();
  return { blob: sink.bytes(), data };
}

/** Lays out a blob by hand, bypassing the writer's checks, to make malformed layers. */
function assemble(extents: ExtentList, data: Buffer, chunkSize: number, virtualSize: number): Buffer {
  const index = encodeExtentIndex(extents);
  const digests = Buffer.concat(
    Array.from({ length: Math.ceil(data.length / chunkSize) }, (_, i) => createHash('sha256').update(data.subarray(i * chunkSize, (i + 1) * chunkSize)).digest()),
  );
  const table = ChunkTable.encode(digests, chunkSize, data.length);
  const trailer = encodeTrailer({
    virtualSize,
    chunkSize,
    dataOffset: 512,
    dataLength: data.length,
    indexOffset: 512 + data.length,
    extentCount: index.length / 24,
    chunkTableOffset: 512 + data.length + index.length,
    chunkCount: digests.length / 32,
    metaDigest: createHash('sha256').update(index).update(table).digest(),
  });
  return Buffer.concat([encodeHeader({ virtualSize, chunkSize }), data, index, table, trailer]);
}

function extents(rows: [number, number, number, ExtentKind][]): ExtentList {
  return {
    count: rows.length,
    virtualOffset: Float64Array.from(rows.map((r) => r[0])),
    length: Float64Array.from(rows.map((r) => r[1])),
    physicalOffset: Float64Array.from(rows.map((r) => r[2])),
    kind: Uint8Array.from(rows.map((r) => r[3])),
  };
}

test('writer output reads back: extents, chunks, data', async () => {
  const { blob, data } = await sampleLayer();
  const r = await LayerReader.open(new BufferRandomAccess(blob));
  assert.is(r.virtualSize, 1 << 20);
  assert.is(r.extents.count, 3);
  assert.equal(Array.from(r.extents.virtualOffset), [0, 8192, 65536]);
  assert.equal(Array.from(r.extents.length), [4096, 4096, 8192]);
  assert.equal(Array.from(r.extents.kind), [ExtentKind.Data, ExtentKind.Zero, ExtentKind.Data]);
  assert.is(r.chunks.count, 3);
  const all = Buffer.concat([await r.readChunk(0), await r.readChunk(1), await r.readChunk(2)]);
  assert.ok(all.equals(data));
  await r.checkHeader();
});

test('the same extents give the same blob (1.1: no uuid), whose legacy uuid fields are zero', async () => {
  const data = randomBytes(12288);
  const { blob } = await sampleLayer(4096, data);
  assert.ok((await sampleLayer(4096, Buffer.from(data))).blob.equals(blob));
  const trailer = blob.subarray(blob.length - TRAILER_SIZE);
  assert.is(blob.readUInt16LE(10), VERSION_MINOR);
  assert.is(trailer.readUInt16LE(10), VERSION_MINOR);
  assert.ok(blob.subarray(32, 48).equals(Buffer.alloc(16)), 'header uuid field zero');
  assert.ok(trailer.subarray(112, 128).equals(Buffer.alloc(16)), 'trailer uuid field zero');
  const other = Buffer.from(data);
  other[5] ^= 1;
  assert.not.ok((await sampleLayer(4096, other)).blob.equals(blob), 'a different byte gives a different blob');
});

/** What a 1.0 writer produced: minor version 0 and the same random uuid in header and trailer. */
function asVersion10(blob: Buffer, headerUuid: Buffer, trailerUuid = headerUuid): Buffer {
  const b = Buffer.from(blob);
  const t = b.length - TRAILER_SIZE;
  b.writeUInt16LE(0, 10);
  b.writeUInt16LE(0, t + 10);
  headerUuid.copy(b, 32);
  trailerUuid.copy(b, t + 112);
  return b;
}

test('a 1.0 layer with a random uuid reads and passes the header check; header and trailer uuids must agree', async () => {
  const { blob, data } = await sampleLayer();
  const uuid = randomBytes(16);
  const r = await LayerReader.open(new BufferRandomAccess(asVersion10(blob, uuid)));
  assert.ok(Buffer.concat([await r.readChunk(0), await r.readChunk(1), await r.readChunk(2)]).equals(data));
  await r.checkHeader();
  const torn = await LayerReader.open(new BufferRandomAccess(asVersion10(blob, uuid, randomBytes(16))));
  assert.is(await codeOf(torn.checkHeader()), 'E_LAYER_BAD_FIELD');
});

test('the manifest-advertised metadata location opens with one read', async () => {
  const { blob } = await sampleLayer();
  const ra = new BufferRandomAccess(blob);
  const first = await LayerReader.open(ra);
  let reads = 0;
  const counting = { size: ra.size, read: (o: number, l: number) => (reads++, ra.read(o, l)) };
  const second = await LayerReader.open(counting, first.metaLocation);
  assert.is(reads, 1);
  assert.is(second.extents.count, 3);
});

test('adjacent data extents coalesce; partial last sector is padded', async () => {
  const sink = new CollectSink();
  const w = new LayerWriter(sink, { virtualSize: 1000, chunkSize: 4096 });
  await w.addData(0, Buffer.alloc(512, 1));
  await w.addData(512, Buffer.alloc(488, 2));
  const s = await w.finish();
  const r = await LayerReader.open(new BufferRandomAccess(sink.bytes()));
  assert.is(r.extents.count, 1);
  assert.is(r.extents.length[0], 1024);
  assert.is(s.dataBytes, 1000);
});

test('writer refuses out-of-order, misaligned and out-of-range extents', async () => {
  const w = new LayerWriter(new CollectSink(), { virtualSize: 1 << 20, chunkSize: 4096 });
  await w.addData(4096, Buffer.alloc(512));
  assert.is(await codeOf(w.addData(0, Buffer.alloc(512))), 'E_LAYER_WRITE');
  assert.is(await codeOf(w.addData(8193, Buffer.alloc(512))), 'E_LAYER_WRITE');
  assert.is(await codeOf(w.addData(1 << 20, Buffer.alloc(512))), 'E_LAYER_WRITE');
  assert.throws(() => new LayerWriter(new CollectSink(), { virtualSize: 1, chunkSize: 3000 }));
});

test('malformed: truncated tail', async () => {
  const { blob } = await sampleLayer();
  for (const cut of [1, 64, TRAILER_SIZE, 300]) {
    const code = await codeOf(LayerReader.open(new BufferRandomAccess(blob.subarray(0, blob.length - cut))));
    assert.ok(['E_LAYER_BAD_MAGIC', 'E_LAYER_TRUNCATED', 'E_LAYER_OUT_OF_BOUNDS'].includes(code), `cut ${cut}: ${code}`);
  }
  assert.is(await codeOf(LayerReader.open(new BufferRandomAccess(blob.subarray(0, 100)))), 'E_LAYER_TRUNCATED');
});

test('malformed: bad magic, bad version', async () => {
  const { blob } = await sampleLayer();
  const bad = Buffer.from(blob);
  bad[bad.length - TRAILER_SIZE] ^= 0xff;
  assert.is(await codeOf(LayerReader.open(new BufferRandomAccess(bad))), 'E_LAYER_BAD_MAGIC');
  const v2 = Buffer.from(blob);
  v2.writeUInt16LE(2, v2.length - TRAILER_SIZE + 8);
  assert.is(await codeOf(LayerReader.open(new BufferRandomAccess(v2))), 'E_LAYER_BAD_VERSION');
  const head = Buffer.from(blob);
  head[0] ^= 0xff;
  const r = await LayerReader.open(new BufferRandomAccess(head));
  assert.is(await codeOf(r.checkHeader()), 'E_LAYER_BAD_MAGIC');
});

test('malformed: overlapping and unsorted extents', async () => {
  const data = Buffer.alloc(8192, 1);
  const overlap = assemble(extents([[0, 4096, 512, ExtentKind.Data], [2048, 4096, 4608, ExtentKind.Data]]), data, 4096, 1 << 20);
  assert.is(await codeOf(LayerReader.open(new BufferRandomAccess(overlap))), 'E_LAYER_EXTENT_ORDER');
  const unsorted = assemble(extents([[8192, 4096, 512, ExtentKind.Data], [0, 4096, 4608, ExtentKind.Data]]), data, 4096, 1 << 20);
  assert.is(await codeOf(LayerReader.open(new BufferRandomAccess(unsorted))), 'E_LAYER_EXTENT_ORDER');
});

test('malformed: extent past the data region or the virtual size, index past end', async () => {
  const data = Buffer.alloc(4096, 1);
  const pastData = assemble(extents([[0, 8192, 512, ExtentKind.Data]]), data, 4096, 1 << 20);
  assert.is(await codeOf(LayerReader.open(new BufferRandomAccess(pastData))), 'E_LAYER_OUT_OF_BOUNDS');
  const pastVirtual = assemble(extents([[1 << 20, 4096, 512, ExtentKind.Data]]), data, 4096, 1 << 20);
  assert.is(await codeOf(LayerReader.open(new BufferRandomAccess(pastVirtual))), 'E_LAYER_OUT_OF_BOUNDS');
  const { blob } = await sampleLayer();
  const farIndex = Buffer.from(blob);
  farIndex.writeUInt32LE(blob.length * 4, farIndex.length - TRAILER_SIZE + 48);
  assert.is(await codeOf(LayerReader.open(new BufferRandomAccess(farIndex))), 'E_LAYER_OUT_OF_BOUNDS');
});

test('digest mismatch: a flipped data byte fails its chunk, a flipped index byte fails the metadata', async () => {
  const { blob } = await sampleLayer();
  const dataFlip = Buffer.from(blob);
  dataFlip[512 + 4096 + 10] ^= 1;
  const r = await LayerReader.open(new BufferRandomAccess(dataFlip));
  await r.readChunk(0);
  assert.is(await codeOf(r.readChunk(1)), 'E_CHUNK_DIGEST');
  const indexFlip = Buffer.from(blob);
  indexFlip[r.trailer.indexOffset + 1] ^= 1;
  assert.is(await codeOf(LayerReader.open(new BufferRandomAccess(indexFlip))), 'E_LAYER_META_DIGEST');
});

test('chunk digests: data in one addData call or split across many, awaited or in flight, gives one blob', async () => {
  const data = randomBytes(40 * 4096 + 512);
  const expected = new CollectSink();
  const one = new LayerWriter(expected, { virtualSize: 1 << 21, chunkSize: 16384 });
  await one.addData(8192, data);
  await one.finish();
  // Odd rounds hash whole chunks "elsewhere": answers arrive late and out of order, the table grows meanwhile.
  const hashChunks = async (chunks: Buffer, chunkSize: number) => {
    await new Promise((r) => setTimeout(r, Math.random() * 5));
    const out = Buffer.alloc((chunks.length / chunkSize) * 32);
    for (let i = 0; i * chunkSize < chunks.length; i++) createHash('sha256').update(chunks.subarray(i * chunkSize, (i + 1) * chunkSize)).digest().copy(out, i * 32);
    return out;
  };
  for (let round = 0; round < 20; round++) {
    const sink = new CollectSink();
    const w = new LayerWriter(sink, { virtualSize: 1 << 21, chunkSize: 16384, ...(round % 4 >= 2 ? { hashChunks } : {}) });
    const writes: Promise<void>[] = [];
    for (let at = 0; at < data.length; ) {
      const take = Math.min(data.length - at, 512 * (1 + Math.floor(Math.random() * 80)));
      const write = w.addData(8192 + at, data.subarray(at, at + take));
      if (round % 2) writes.push(write);
      else await write;
      at += take;
    }
    await Promise.all(writes);
    await w.finish();
    assert.ok(sink.bytes().equals(expected.bytes()), `round ${round}`);
  }
  const r = await LayerReader.open(new BufferRandomAccess(expected.bytes()));
  for (let i = 0; i < r.chunks.count; i++) await r.readChunk(i);
});

test('more chunks than the digest table first holds: every chunk verifies, inline and hashed elsewhere alike', async () => {
  const data = randomBytes(2100 * 4096 + 4096 * 3);
  const blobs: Buffer[] = [];
  for (const hashChunks of [undefined, async (chunks: Buffer, size: number) => {
    const out = Buffer.alloc((chunks.length / size) * 32);
    for (let i = 0; i * size < chunks.length; i++) createHash('sha256').update(chunks.subarray(i * size, (i + 1) * size)).digest().copy(out, i * 32);
    return out;
  }]) {
    const sink = new CollectSink();
    const w = new LayerWriter(sink, { virtualSize: 1 << 24, chunkSize: 4096, ...(hashChunks ? { hashChunks } : {}) });
    // Pieces of 1.5 chunks: some chunks are hashed inline across calls, some whole.
    for (let at = 0; at < data.length; at += 6144) await w.addData(at, data.subarray(at, at + 6144));
    await w.finish();
    const r = await LayerReader.open(new BufferRandomAccess(sink.bytes()));
    assert.ok(r.chunks.count > 2048);
    for (let i = 0; i < r.chunks.count; i++) await r.readChunk(i);
    blobs.push(sink.bytes());
  }
  assert.ok(blobs[0]!.equals(blobs[1]!));
});

test('extents longer than one index entry are split and read back whole', async () => {
  const huge = 3 * 2 ** 41; // 6 TiB of zero: three entries of at most 2^32-1 sectors
  const sink = new CollectSink();
  const w = new LayerWriter(sink, { virtualSize: huge + 4096, chunkSize: 4096 });
  w.addZero(0, huge);
  await w.addData(huge, Buffer.alloc(4096, 9));
  await w.finish();
  const r = await LayerReader.open(new BufferRandomAccess(sink.bytes()));
  let zero = 0;
  for (let i = 0; i < r.extents.count; i++) if (r.extents.kind[i] === ExtentKind.Zero) zero += r.extents.length[i]!;
  assert.is(zero, huge);
  assert.ok(r.extents.count >= 4);
});

test.run();
