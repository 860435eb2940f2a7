import { createHash, randomBytes } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { codeOf } from '../../integration/support/error-code.js';
import { ChunkCompressor } from './chunk-compressor.js';
import type { CodecChoice } from './chunk-codec.js';
import { ChunkTable } from './chunk-table.js';
import { LayerReader } from './layer-reader.js';
import { CHUNK_ENTRY_SIZE, Compression, TRAILER_SIZE, VERSION_MINOR, VERSION_MINOR_COMPRESSED } from './layer-spec.js';
import { LayerWriter } from './layer-writer.js';
import { BufferRandomAccess } from './random-access.js';
import { DecodedChunks } from '../source/decoded-chunks.js';
import { StoredBlobData } from '../source/stored-blob-data.js';

const CHUNK = 4096;
const CODECS: CodecChoice[] = [{ codec: 'zstd', level: 3 }, { codec: 'zstd', level: 12 }, { codec: 'lz4' }];

/** Chunks that compress (text-like), that do not (random), and mixes of both. */
function mixedData(chunks: number): Buffer {
  const parts: Buffer[] = [];
  for (let i = 0; i < chunks; i++) {
    const kind = i % 3;
    if (kind === 0) parts.push(Buffer.from(`line ${i} of a log that repeats itself\n`.repeat(200)).subarray(0, CHUNK));
    else if (kind === 1) parts.push(randomBytes(CHUNK));
    else parts.push(Buffer.concat([randomBytes(CHUNK / 2), Buffer.alloc(CHUNK / 2, i)]));
  }
  return Buffer.concat(parts);
}

async function writeLayer(data: Buffer, choice: CodecChoice | undefined, virtualSize = 1 << 20): Promise<Buffer> {
  const parts: Buffer[] = [];
  const compressor = choice && new ChunkCompressor(choice);
  try {
    const w = new LayerWriter({ write: async (b) => void parts.push(Buffer.from(b)) }, { virtualSize, chunkSize: CHUNK, compressor });
    // Extents that do not fill their windows: a compressed layer puts each window's data in its own chunk.
    await w.addData(0, data.subarray(0, 3 * 512));
    w.addZero(8192, 4096);
    await w.addData(65536, data.subarray(3 * 512));
    await w.finish();
  } finally {
    await compressor?.close();
  }
  return Buffer.concat(parts);
}

/** The data region writeLayer's compressed layer holds: its first window's 1536 bytes zero-filled to a chunk, then the rest. */
function windowed(data: Buffer): Buffer {
  return Buffer.concat([data.subarray(0, 3 * 512), Buffer.alloc(CHUNK - 3 * 512), data.subarray(3 * 512)]);
}

async function readAll(reader: LayerReader, data: BlobDataLike): Promise<Buffer> {
  const out = Buffer.alloc(reader.trailer.dataLength);
  await data.readInto(reader.trailer.dataOffset, out, 0, out.length);
  return out;
}

interface BlobDataLike {
  readInto(physical: number, target: Buffer, at: number, length: number): Promise<void>;
}

function fileOver(blob: Buffer): BlobDataLike {
  return { readInto: async (offset, target, at, length) => void blob.copy(target, at, offset, offset + length) };
}

for (const choice of CODECS) {
  test(`${choice.codec}${choice.level ? `:${choice.level}` : ''}: a compressed layer reads back byte for byte, raw and compressed chunks mixed`, async () => {
    const source = mixedData(30);
    const blob = await writeLayer(source, choice);
    const data = windowed(source);
    const reader = await LayerReader.open(new BufferRandomAccess(blob));
    const t = reader.chunks;
    assert.ok(t.compressed);
    assert.is(blob.readUInt16LE(10), VERSION_MINOR_COMPRESSED, 'header says 1.2');
    assert.is(blob.readUInt16LE(blob.length - TRAILER_SIZE + 10), VERSION_MINOR_COMPRESSED, 'trailer says 1.2');
    const kinds = new Set(Array.from({ length: t.count }, (_, i) => t.compression(i)));
    assert.ok(kinds.has(Compression.None), 'random chunks stay raw');
    assert.ok(kinds.size === 2, 'the others are compressed');
    assert.ok(t.storedLength < data.length * 0.8, `stored ${t.storedLength} of ${data.length}`);
    assert.is(blob.length, 512 + t.storedLength + reader.metaLocation.length, 'the region is the packed stored bytes');
    for (let i = 0; i < t.count; i++) {
      assert.equal(await reader.readChunkData(i), data.subarray(i * CHUNK, (i + 1) * CHUNK), `chunk ${i}`);
      assert.is(createHash('sha256').update(blob.subarray(t.offset(i), t.offset(i) + t.length(i))).digest('hex'), t.digest(i).toString('hex'), 'digest of stored bytes');
    }
    const decoded = new DecodedChunks(1 << 20);
    const layerData = new StoredBlobData(fileOver(blob), reader, decoded);
    assert.equal(await readAll(reader, layerData), data);
    // Reads that cross chunk boundaries at odd offsets, against the plain data.
    for (const [at, n] of [
      [0, 1],
      [CHUNK - 7, 20],
      [5 * CHUNK + 100, 3 * CHUNK + 5],
      [data.length - 9, 9],
    ] as const) {
      const out = Buffer.alloc(n);
      await layerData.readInto(512 + at, out, 0, n);
      assert.equal(out, data.subarray(at, at + n), `[${at}, +${n})`);
    }
    assert.ok(decoded.size.chunks > 0 && decoded.size.chunks <= t.count);
  });
}

test('property: a window holding the same bytes in two compressed layers is the same chunk, whatever else either holds', async () => {
  let seed = 7;
  const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) % n);
  for (let round = 0; round < 20; round++) {
    // A device of 64 windows; each layer writes a random subset of sector runs, B changes a few windows of A.
    const device = Buffer.concat(Array.from({ length: 64 }, (_, w) => Buffer.from(`window ${w} round ${round} `.repeat(300)).subarray(0, CHUNK)));
    const a = new Set<number>();
    for (let w = 0; w < 64; w++) if (rand(3) > 0) a.add(w);
    const b = new Set(a);
    const changed = new Set<number>();
    for (let k = 0; k < 4; k++) {
      const w = rand(64);
      if (b.has(w) && rand(2)) b.delete(w);
      else b.add(w);
      changed.add(w);
    }
    const blobA = await writeWindows(device, a, new Map());
    const edits = new Map([...changed].filter((w) => b.has(w)).map((w) => [w, rand(CHUNK / 512) * 512] as const));
    const blobB = await writeWindows(device, b, edits);
    const digestsOf = async (blob: Buffer) => {
      const t = (await LayerReader.open(new BufferRandomAccess(blob))).chunks;
      return new Set(Array.from({ length: t.count }, (_, i) => t.digest(i).toString('hex')));
    };
    const [da, db] = [await digestsOf(blobA), await digestsOf(blobB)];
    const unchanged = [...a].filter((w) => b.has(w) && !changed.has(w));
    const shared = [...da].filter((d) => db.has(d)).length;
    // Every unchanged window but possibly A's last (a short last chunk) is a chunk of B too.
    assert.ok(shared >= unchanged.length - 1, `round ${round}: ${shared} shared chunks for ${unchanged.length} unchanged windows`);
  }
});

/** A compressed layer with the windows `windows` of `device` as data, sector `edits.get(w)` of a window flipped. */
async function writeWindows(device: Buffer, windows: Set<number>, edits: Map<number, number>): Promise<Buffer> {
  const parts: Buffer[] = [];
  const compressor = new ChunkCompressor({ codec: 'zstd', level: 3 });
  try {
    const w = new LayerWriter({ write: async (b) => void parts.push(Buffer.from(b)) }, { virtualSize: device.length, chunkSize: CHUNK, compressor });
    for (const win of [...windows].sort((x, y) => x - y)) {
      const bytes = Buffer.from(device.subarray(win * CHUNK, (win + 1) * CHUNK));
      const edit = edits.get(win);
      if (edit !== undefined) bytes[edit] ^= 0xff;
      // Half-window extents where the window allows it, so windows are not always written whole.
      if (win % 2) await w.addData(win * CHUNK + 1024, bytes.subarray(1024));
      else await w.addData(win * CHUNK, bytes);
    }
    await w.finish();
  } finally {
    await compressor.close();
  }
  return Buffer.concat(parts);
}

test('the same input and codec give the same compressed layer (reproducible digests)', async () => {
  const data = mixedData(20);
  for (const choice of CODECS) assert.ok((await writeLayer(data, choice)).equals(await writeLayer(data, choice)), choice.codec);
});

test('without a compressor the layer is a 1.1 layer, byte for byte as before', async () => {
  const blob = await writeLayer(mixedData(6), undefined);
  assert.is(blob.readUInt16LE(10), VERSION_MINOR);
  const reader = await LayerReader.open(new BufferRandomAccess(blob));
  assert.not.ok(reader.chunks.compressed);
  assert.is(reader.chunks.storedLength, reader.trailer.dataLength);
});

test('forEachDataPart and forEachStoredPart split any range into contiguous parts within their chunks', async () => {
  const blob = await writeLayer(mixedData(12), { codec: 'zstd' });
  const t = (await LayerReader.open(new BufferRandomAccess(blob))).chunks;
  const regions = [
    { each: t.forEachDataPart.bind(t), start: t.dataOffset, size: t.dataLength, chunkStart: (i: number) => t.dataStart(i), chunkSize: (i: number) => t.dataSize(i) },
    { each: t.forEachStoredPart.bind(t), start: t.dataOffset, size: t.storedLength, chunkStart: (i: number) => t.offset(i), chunkSize: (i: number) => t.length(i) },
  ];
  let seed = 3;
  const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) % n);
  for (const r of regions) {
    for (let k = 0; k < 300; k++) {
      const from = r.start + rand(r.size);
      const length = 1 + rand(r.start + r.size - from);
      let covered = 0;
      let last = -1;
      r.each(from, length, (i, inChunk, at, n) => {
        assert.is(at, covered, 'parts are contiguous');
        assert.ok(i > last && n > 0 && inChunk + n <= r.chunkSize(i), `chunk ${i}: [${inChunk}, +${n})`);
        assert.is(r.chunkStart(i) + inChunk, from + at, 'each part sits where the range says');
        covered += n;
        last = i;
      });
      assert.is(covered, length);
    }
  }
});

test('indexOfStored finds the chunk of every stored byte', async () => {
  const blob = await writeLayer(mixedData(12), { codec: 'zstd' });
  const t = (await LayerReader.open(new BufferRandomAccess(blob))).chunks;
  for (let i = 0; i < t.count; i++) {
    assert.is(t.indexOfStored(t.offset(i)), i);
    assert.is(t.indexOfStored(t.offset(i) + t.length(i) - 1), i);
  }
});

/** The blob with chunk table entry `i` changed by `edit`, and the meta digest fixed up, so only the table's rules can catch it. */
async function withEntry(blob: Buffer, i: number, edit: (entry: Buffer) => void): Promise<Buffer> {
  const b = Buffer.from(blob);
  const reader = await LayerReader.open(new BufferRandomAccess(blob));
  const tableAt = reader.trailer.chunkTableOffset;
  edit(b.subarray(tableAt + i * CHUNK_ENTRY_SIZE, tableAt + (i + 1) * CHUNK_ENTRY_SIZE));
  const t = b.length - TRAILER_SIZE;
  createHash('sha256').update(b.subarray(reader.trailer.indexOffset, t)).digest().copy(b, t + 80);
  return b;
}

test('chunk table flaws of compressed layers are malformed-layer errors', async () => {
  const blob = await writeLayer(mixedData(9), { codec: 'zstd' });
  const t = (await LayerReader.open(new BufferRandomAccess(blob))).chunks;
  const compressed = Array.from({ length: t.count }, (_, i) => i).find((i) => t.compression(i) === Compression.Zstd)!;
  const raw = Array.from({ length: t.count }, (_, i) => i).find((i) => t.compression(i) === Compression.None)!;
  const open = (b: Buffer) => codeOf(LayerReader.open(new BufferRandomAccess(b)));
  assert.is(await open(await withEntry(blob, compressed, (e) => void (e[36] = 9))), 'E_LAYER_BAD_FIELD', 'unknown compression');
  assert.is(await open(await withEntry(blob, compressed, (e) => e.writeUInt32LE(CHUNK, 32))), 'E_LAYER_BAD_FIELD', 'compressed but not smaller');
  assert.is(await open(await withEntry(blob, compressed, (e) => e.writeUInt32LE(0, 32))), 'E_LAYER_BAD_FIELD', 'compressed to nothing');
  assert.is(await open(await withEntry(blob, raw, (e) => void (e[36] = Compression.Lz4))), 'E_LAYER_BAD_FIELD', 'a raw chunk labelled lz4 is not smaller');
  assert.is(await open(await withEntry(blob, compressed, (e) => e.writeUInt32LE(e.readUInt32LE(32) - 1, 32))), 'E_LAYER_OUT_OF_BOUNDS', 'stored lengths do not fill the region');
});

test('a corrupt compressed chunk is caught by its digest before decoding; a stream that lies is caught by decoding', async () => {
  const data = mixedData(9);
  const blob = await writeLayer(data, { codec: 'zstd' });
  const t = (await LayerReader.open(new BufferRandomAccess(blob))).chunks;
  const i = Array.from({ length: t.count }, (_, k) => k).find((k) => t.compression(k) === Compression.Zstd)!;
  const flipped = Buffer.from(blob);
  flipped[t.offset(i) + 5]! ^= 0xff;
  const reader = await LayerReader.open(new BufferRandomAccess(flipped));
  assert.is(await codeOf(reader.readChunkData(i)), 'E_CHUNK_DIGEST');
  assert.is(await codeOf(new StoredBlobData(fileOver(flipped), reader, new DecodedChunks()).readInto(t.dataStart(i), Buffer.alloc(10), 0, 10)), 'E_CHUNK_DIGEST');
  // A table whose digest matches a truncated stream (a writer bug, or a hostile layer): the digest passes, decoding does not.
  const cut = t.length(i) - 3;
  const lying = await withEntry(blob, i, (e) => {
    createHash('sha256').update(blob.subarray(t.offset(i), t.offset(i) + cut)).digest().copy(e, 0);
    e.writeUInt32LE(cut, 32);
  });
  // Its stored region no longer adds up either; re-tile by cutting the same bytes out of the blob.
  const tiled = Buffer.concat([lying.subarray(0, t.offset(i) + cut), lying.subarray(t.offset(i) + t.length(i))]);
  const fixTrailer = (b: Buffer): Buffer => {
    const tr = b.length - TRAILER_SIZE;
    for (const field of [48, 64]) b.writeUInt32LE(b.readUInt32LE(tr + field) - 3, tr + field);
    return b;
  };
  const lyingReader = await LayerReader.open(new BufferRandomAccess(fixTrailer(tiled)));
  assert.is(await codeOf(lyingReader.readChunkData(i)), 'E_CHUNK_DECODE');
});

test('encode keeps stored lengths and compressions; an all-raw table is not compressed', () => {
  const digests = randomBytes(64);
  const lengths = new Uint32Array([100, CHUNK]);
  const compressions = new Uint8Array([Compression.Lz4, Compression.None]);
  const table = ChunkTable.decode(ChunkTable.encode(digests, CHUNK, 2 * CHUNK, { lengths, compressions }), CHUNK, 512, 2 * CHUNK);
  assert.ok(table.compressed);
  assert.equal([table.offset(0), table.length(0), table.offset(1), table.length(1)], [512, 100, 612, CHUNK]);
  assert.equal([table.dataStart(1), table.dataSize(1), table.storedLength], [512 + CHUNK, CHUNK, 100 + CHUNK]);
  const plain = ChunkTable.decode(ChunkTable.encode(digests, CHUNK, 2 * CHUNK), CHUNK, 512, 2 * CHUNK);
  assert.not.ok(plain.compressed);
});

test.run();
