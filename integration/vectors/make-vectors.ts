// Regenerates format-spec/vectors/ from the recipes: `node dist/integration/vectors/make-vectors.js`.
// Only run this when the format changes on purpose; the test suite checks the committed files.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BufferRandomAccess, type ByteSink } from '../../lib/format/random-access.js';
import { LayerReader } from '../../lib/format/layer-reader.js';
import { LAYERS, STACKS, modelDevice, sha256, writeRecipe } from './recipes.js';
import { MALFORMED } from './malformed.js';

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
const stacks = STACKS.map((s) => {
  const device = modelDevice(s.layers.map((n) => LAYERS.find((l) => l.name === n)!));
  return { name: s.name, layers: s.layers.map((n) => `${n}.layer`), reads: s.reads.map(([offset, length]) => ({ offset, length, sha256: sha256(device.subarray(offset, offset + length)) })) };
});
const malformed = [];
for (const m of MALFORMED) {
  await writeFile(join(dir, `${m.name}.layer`), m.make(blobs));
  malformed.push({ file: `${m.name}.layer`, error: m.error });
}
const layers = LAYERS.map((l) => ({ file: `${l.name}.layer`, sha256: sha256(blobs.get(l.name)!) }));
await writeFile(join(dir, 'vectors.json'), JSON.stringify({ formatVersion: '1.0', layers, stacks, malformed }, null, 2) + '\n');
console.log(`wrote ${layers.length} layers, ${stacks.length} stacks, ${malformed.length} malformed blobs to ${dir}`);
