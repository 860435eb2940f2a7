import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { LayerReader } from '../../lib/format/layer-reader.js';
import { Compression, TRAILER_SIZE, VERSION_MAJOR, VERSION_MINOR_COMPRESSED } from '../../lib/format/layer-spec.js';
import { MergedIndex } from '../../lib/format/merged-index.js';
import { BufferRandomAccess, type ByteSink } from '../../lib/format/random-access.js';
import { LAYERS, sha256, writeRecipe } from './recipes.js';

const dir = 'format-spec/vectors';
interface Vectors {
  formatVersion: string;
  layers: { file: string; formatVersion: string; sha256: string }[];
  stacks: { name: string; layers: string[]; reads: { offset: number; length: number; sha256: string }[] }[];
  malformed: { file: string; error: string }[];
  badChunks: { file: string; chunk: number; error: string }[];
}
const vectors: Vectors = JSON.parse(await readFile(join(dir, 'vectors.json'), 'utf8'));
const load = (file: string) => readFile(join(dir, file));

test('the writer still produces the committed vector blobs byte for byte', async () => {
  for (const recipe of LAYERS) {
    const parts: Buffer[] = [];
    const sink: ByteSink = { write: async (d) => void parts.push(Buffer.from(d)) };
    await writeRecipe(recipe, sink);
    const expected = vectors.layers.find((l) => l.file === `${recipe.name}.layer`)!;
    assert.is(sha256(Buffer.concat(parts)), expected.sha256, recipe.name);
    assert.is(sha256(await load(expected.file)), expected.sha256, `${recipe.name} on disk`);
  }
});

test('every layer vector: its digest, its version; 1.1+ layers hold zero in the old uuid fields, the 1.0 one a random uuid', async () => {
  assert.is(vectors.formatVersion, `${VERSION_MAJOR}.${VERSION_MINOR_COMPRESSED}`, 'vectors made by the current writer');
  const versions = new Set(vectors.layers.map((l) => l.formatVersion));
  assert.ok(versions.has('1.0') && versions.has('1.1') && versions.has(vectors.formatVersion), '1.0, 1.1 and 1.2 layers are among the vectors');
  for (const l of vectors.layers) {
    const blob = await load(l.file);
    assert.is(sha256(blob), l.sha256, l.file);
    const trailer = blob.subarray(blob.length - TRAILER_SIZE);
    const minor = Number(l.formatVersion.split('.')[1]);
    assert.is(blob.readUInt16LE(10), minor, `${l.file} header minor version`);
    assert.is(trailer.readUInt16LE(10), minor, `${l.file} trailer minor version`);
    const headerUuid = blob.subarray(32, 48);
    assert.ok(headerUuid.equals(trailer.subarray(112, 128)), `${l.file}: header and trailer uuid fields agree`);
    assert.is(headerUuid.equals(Buffer.alloc(16)), minor >= 1, `${l.file}: uuid field zero exactly from 1.1 on`);
    await (await LayerReader.open(new BufferRandomAccess(blob))).checkHeader();
  }
});

/** The layer's data at [physical, physical+length) through its chunks: each verified, then decoded. */
async function readData(r: LayerReader, physical: number, length: number, out: Buffer, at: number): Promise<void> {
  const parts: Promise<void>[] = [];
  r.chunks.forEachDataPart(physical, length, (i, from, off, n) => parts.push(r.readChunkData(i).then((data) => void data.copy(out, at + off, from, from + n))));
  await Promise.all(parts);
}

test('reads of every vector stack return the expected bytes', async () => {
  for (const stack of vectors.stacks) {
    const readers = await Promise.all(stack.layers.map(async (f) => LayerReader.open(new BufferRandomAccess(await load(f)))));
    const size = readers[readers.length - 1]!.virtualSize;
    const index = MergedIndex.build(readers.map((r) => r.extents), size);
    for (const read of stack.reads) {
      const out = Buffer.alloc(read.length);
      for (const p of index.resolve(read.offset, read.length)) {
        if (p.kind === 'data') await readData(readers[p.layer]!, p.physicalOffset, p.length, out, p.offset - read.offset);
      }
      assert.is(sha256(out), read.sha256, `${stack.name} read ${read.offset}+${read.length}`);
    }
  }
});

test('the compressed vectors hold compressed chunks of their codec and a raw one, and a 1.2 layer sits in a stack with 1.1 ones', async () => {
  for (const [file, codec] of [['zstd-chunks.layer', Compression.Zstd], ['lz4-chunks.layer', Compression.Lz4]] as const) {
    const t = (await LayerReader.open(new BufferRandomAccess(await load(file)))).chunks;
    const kinds = Array.from({ length: t.count }, (_, i) => t.compression(i));
    assert.ok(kinds.includes(codec) && kinds.includes(Compression.None), `${file}: ${kinds}`);
    assert.ok(!kinds.some((k) => k !== codec && k !== Compression.None), `${file}: ${kinds}`);
    assert.ok(t.storedLength < t.dataLength, `${file}: stored ${t.storedLength} of ${t.dataLength}`);
  }
  const mixed = vectors.stacks.find((s) => s.name === 'mixed-versions')!;
  const minors = mixed.layers.map((f) => vectors.layers.find((l) => l.file === f)!.formatVersion);
  assert.equal(minors, ['1.2', '1.2', '1.1']);
});

test('every bad-chunk vector opens, and reading its chunk fails with its error code; its other chunks read', async () => {
  assert.ok(vectors.badChunks.length >= 3);
  for (const b of vectors.badChunks) {
    const reader = await LayerReader.open(new BufferRandomAccess(await load(b.file)));
    let code = 'no error';
    try {
      await reader.readChunkData(b.chunk);
    } catch (e) {
      code = (e as { code: string }).code;
    }
    assert.is(code, b.error, b.file);
    for (let i = 0; i < reader.chunks.count; i++) if (i !== b.chunk) await reader.readChunkData(i);
  }
});

test('every malformed vector is refused with its error code', async () => {
  for (const m of vectors.malformed) {
    let code = 'no error';
    try {
      await LayerReader.open(new BufferRandomAccess(await load(m.file)));
    } catch (e) {
      code = (e as { code: string }).code;
    }
    assert.is(code, m.error, m.file);
  }
});

test.run();
