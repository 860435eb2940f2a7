// Regenerates format-spec/vectors/ from the recipes: `node dist/integration/vectors/make-vectors.js`.
// Only run this when the format changes on purpose; the test suite checks the committed files.
// Legacy layers (LEGACY_LAYERS) are read from the directory, never rewritten.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BufferRandomAccess, type ByteSink } from '../../lib/format/random-access.js';
import { LayerReader } from '../../lib/format/layer-reader.js';
import { VERSION_MAJOR, VERSION_MINOR_COMPRESSED } from '../../lib/format/layer-spec.js';
import { LAYERS, LEGACY_LAYERS, STACKS, modelDevice, recipeOf, sha256, writeRecipe } from './recipes.js';
import { BAD_CHUNKS, MALFORMED } from './malformed.js';

// The newest version this writer makes; each layer names its own (1.2 only when compressed).
const version = `${VERSION_MAJOR}.${VERSION_MINOR_COMPRESSED}`;
const versionOf = (blob: Buffer) => `${blob.readUInt16LE(8)}.${blob.readUInt16LE(10)}`;
const dir = join(process.argv[2] ?? 'format-spec/vectors');
const blobs = new Map<string, Buffer>();
for (const recipe of LAYERS) {
  const parts: Buffer[] = [];
  const sink: ByteSink = { write: async (d) => void parts.push(Buffer.from(d)) };
  await writeRecipe(recipe, sink);
  const blob = Buffer.concat(parts);
  await LayerReader.open(new BufferRandomAccess(blob));
  blobs.set(recipe.name, blob);
  await writeFile(join(dir, `${recipe.name}.layer`), blob);
}
for (const legacy of LEGACY_LAYERS) {
  const blob = await readFile(join(dir, `${legacy.name}.layer`));
  await (await LayerReader.open(new BufferRandomAccess(blob))).checkHeader();
  blobs.set(legacy.name, blob);
}
const stacks = STACKS.map((s) => {
  const device = modelDevice(s.layers.map(recipeOf));
  return { name: s.name, layers: s.layers.map((n) => `${n}.layer`), reads: s.reads.map(([offset, length]) => ({ offset, length, sha256: sha256(device.subarray(offset, offset + length)) })) };
});
const malformed = [];
for (const m of MALFORMED) {
  await writeFile(join(dir, `${m.name}.layer`), m.make(blobs));
  malformed.push({ file: `${m.name}.layer`, error: m.error });
}
const badChunks = [];
for (const b of BAD_CHUNKS) {
  await writeFile(join(dir, `${b.name}.layer`), await b.make(blobs));
  badChunks.push({ file: `${b.name}.layer`, chunk: b.chunk, error: b.error });
}
const layers = [
  ...LAYERS.map((l) => ({ file: `${l.name}.layer`, formatVersion: versionOf(blobs.get(l.name)!), sha256: sha256(blobs.get(l.name)!) })),
  ...LEGACY_LAYERS.map((l) => ({ file: `${l.name}.layer`, formatVersion: l.formatVersion, sha256: sha256(blobs.get(l.name)!) })),
];
await writeFile(join(dir, 'vectors.json'), JSON.stringify({ formatVersion: version, layers, stacks, malformed, badChunks }, null, 2) + '\n');
console.log(`wrote ${LAYERS.length} layers (${LEGACY_LAYERS.length} legacy kept), ${stacks.length} stacks, ${malformed.length} malformed blobs, ${badChunks.length} with a bad chunk to ${dir}`);
