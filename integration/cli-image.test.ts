import { createHash, randomBytes, randomInt } from 'node:crypto';
import { execFile } from 'node:child_process';
import { open, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { LayerReader } from '../lib/format/layer-reader.js';
import { MEDIA_TYPE_CONFIG, MEDIA_TYPE_LAYER, TRAILER_SIZE } from '../lib/format/layer-spec.js';
import { decodeTrailer } from '../lib/format/trailer.js';
import { MEDIA_TYPE_OCI_MANIFEST } from '../lib/oci/manifest.js';
import { OciStore } from '../lib/store/oci-store.js';
import { lazybd, withTempDir } from './support/cli.js';
import { requireTools } from './support/tools.js';
import { modelDevice, recipeOf } from './vectors/recipes.js';

const run = promisify(execFile);
const sha = async (path: string) => createHash('sha256').update(await readFile(path)).digest('hex');

/** A sparse raw file: random data runs at random places, the rest never written. */
async function randomSparse(path: string, size: number, runs: number): Promise<void> {
  const h = await open(path, 'w');
  try {
    await h.truncate(size);
    for (let i = 0; i < runs && size > 0; i++) {
      const len = Math.min(randomInt(1, 200_000), size);
      await h.write(randomBytes(len), 0, len, randomInt(0, size - len + 1));
    }
  } finally {
    await h.close();
  }
}

async function roundTrip(dir: string, name: string, size: number, fill: (path: string) => Promise<void>, chunkSize?: number) {
  const src = join(dir, `${name}.raw`);
  const out = join(dir, `${name}.out`);
  await fill(src);
  const env = { LAZYBD_STORE: join(dir, 'store') };
  const args = ['create', src, `${name}:v1`, '--json', ...(chunkSize ? ['--chunk-size', String(chunkSize)] : [])];
  const c = await lazybd(args, env);
  assert.is(c.status, 0, c.stderr);
  const e = await lazybd(['export', `${name}:v1`, out, '--json'], env);
  assert.is(e.status, 0, e.stderr);
  assert.is((await stat(out)).size, size, `${name}: exported size`);
  assert.is(await sha(out), await sha(src), `${name}: sha256 differs`);
  return { src, out, env, created: JSON.parse(c.stdout) };
}

test('round trip: random sparse files of awkward sizes export byte-identical', async () => {
  await withTempDir(async (dir) => {
    const cases: [string, number, number, number?][] = [
      ['empty', 0, 0],
      ['one-byte', 1, 1],
      ['odd', 1_000_003, 5],
      ['unaligned-chunks', 3 * 65536 + 777, 4, 16384],
      ['sparse', 64 << 20, 20],
    ];
    for (const [name, size, runs, chunk] of cases) await roundTrip(dir, name, size, (p) => randomSparse(p, size, runs), chunk);
    await roundTrip(dir, 'all-zero', 8 << 20, async (p) => writeFile(p, Buffer.alloc(8 << 20)));
    await roundTrip(dir, 'last-sector', 4 << 20, async (p) => {
      const h = await open(p, 'w');
      await h.truncate(4 << 20);
      await h.write(Buffer.from([0x5a]), 0, 1, (4 << 20) - 1);
      await h.close();
    });
  });
});

test('holes cost nothing: a 1 GiB sparse image with 4 MiB of data gives a layer of about 4 MiB', async () => {
  await withTempDir(async (dir) => {
    const { created } = await roundTrip(dir, 'big', 1 << 30, async (p) => {
      const h = await open(p, 'w');
      await h.truncate(1 << 30);
      for (let i = 0; i < 4; i++) await h.write(randomBytes(1 << 20), 0, 1 << 20, i * (256 << 20) + 12345 * 512);
      await h.close();
    });
    assert.ok(created.layerSize < (4 << 20) + (64 << 10), `layer is ${created.layerSize} bytes`);
    assert.ok(created.dataBytes >= 4 << 20);
  });
});

test('qemu-img compare agrees with the source', async () => {
  if (!(await requireTools('qemu-img'))) return;
  await withTempDir(async (dir) => {
    const { src, out } = await roundTrip(dir, 'q', 16 << 20, (p) => randomSparse(p, 16 << 20, 10));
    const { stdout } = await run('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', src, out]);
    assert.match(stdout, /Images are identical/);
  });
});

test('inspect --json reports sizes, layers and counts', async () => {
  await withTempDir(async (dir) => {
    const { env, created } = await roundTrip(dir, 'i', 4 << 20, (p) => randomSparse(p, 4 << 20, 3));
    const r = await lazybd(['inspect', 'i:v1', '--json'], env);
    assert.is(r.status, 0, r.stderr);
    const report = JSON.parse(r.stdout);
    assert.is(report.virtualSize, 4 << 20);
    assert.is(report.layers.length, 1);
    assert.is(report.layers[0].digest, created.layer);
    assert.is(report.layers[0].extents, created.extents);
    assert.is(report.allocatedBytes, created.dataBytes);
  });
});

test('verify passes on a sound image and names the first bad chunk of a corrupt one', async () => {
  await withTempDir(async (dir) => {
    const { env, created } = await roundTrip(dir, 'v', 1 << 20, (p) => writeFile(p, randomBytes(1 << 20)), 65536);
    assert.is((await lazybd(['verify', 'v:v1'], env)).status, 0);
    const blob = join(dir, 'store', 'blobs', 'sha256', created.layer.slice(7));
    const h = await open(blob, 'r+');
    await h.write(Buffer.from([0xff ^ (await readFile(blob))[512 + 3 * 65536 + 5]!]), 0, 1, 512 + 3 * 65536 + 5);
    await h.close();
    const bad = await lazybd(['verify', 'v:v1'], env);
    assert.is(bad.status, 4);
    assert.match(bad.stderr, /chunk 3 at blob offset 197120/);
    assert.match(bad.stderr, /E_VERIFY_FAILED/);
  });
});

test('errors: missing image, bad chunk size, malformed layer each have a code and a status', async () => {
  await withTempDir(async (dir) => {
    const env = { LAZYBD_STORE: join(dir, 'store') };
    const missing = await lazybd(['inspect', 'nope:v1'], env);
    assert.is(missing.status, 2);
    assert.match(missing.stderr, /E_IMAGE_NOT_FOUND/);
    assert.not.match(missing.stderr, /at .*\.js/, 'no stack trace without --debug');
    await writeFile(join(dir, 'x.raw'), randomBytes(8192));
    const chunk = await lazybd(['create', join(dir, 'x.raw'), 'x:v1', '--chunk-size', '3000'], env);
    assert.is(chunk.status, 2, 'a bad chunk size is a usage error, caught before the layer is written');
    assert.match(chunk.stderr, /--chunk-size .*not 3000 \(E_USAGE\)/);
    const { created } = await roundTrip(dir, 'm', 8192, (p) => writeFile(p, randomBytes(8192)));
    const blob = join(dir, 'store', 'blobs', 'sha256', created.layer.slice(7));
    const h = await open(blob, 'r+');
    await h.truncate((await stat(blob)).size - 10);
    await h.close();
    const broken = await lazybd(['export', 'm:v1', join(dir, 'm2.out')], env);
    assert.is(broken.status, 3);
    assert.match(broken.stderr, /E_LAYER_/);
  });
});

/** A created image as the store holds it: manifest and config digests, the config, the layer's chunk digests. */
async function storedImage(storeDir: string, ref: string) {
  const store = await OciStore.open(storeDir);
  const { descriptor, manifest } = await store.resolve(ref);
  const layer = manifest.layers[0]!;
  const file = await store.openBlob(layer.digest);
  const reader = await LayerReader.open(file).finally(() => file.close());
  const chunks = Array.from({ length: reader.chunks.count }, (_, i) => reader.chunks.digest(i).toString('hex'));
  const config = JSON.parse((await store.readBlob(manifest.config.digest)).toString('utf8')) as { created: string };
  return { manifest: descriptor.digest, config: manifest.config.digest, created: config.created, annotations: manifest.annotations ?? {}, layer, chunks };
}

test('create is reproducible: one file into two stores gives one layer; with SOURCE_DATE_EPOCH one config and manifest', async () => {
  await withTempDir(async (dir) => {
    const raw = join(dir, 'in.raw');
    await randomSparse(raw, 6 << 20, 12);
    const create = async (store: string, ref: string, extra: string[] = [], env: NodeJS.ProcessEnv = {}) => {
      const r = await lazybd(['create', raw, ref, '--json', ...extra], { LAZYBD_STORE: join(dir, store), SOURCE_DATE_EPOCH: '', ...env });
      assert.is(r.status, 0, r.stderr);
      return storedImage(join(dir, store), ref);
    };
    const t0 = Date.now();
    const a = await create('s1', 'a:v1');
    const b = await create('s2', 'b:v1');
    assert.ok(Date.parse(a.created) >= t0 - 1000 && Date.parse(a.created) <= Date.now(), `without SOURCE_DATE_EPOCH created is now (${a.created})`);
    assert.is(b.layer.digest, a.layer.digest, 'same input, same layer');
    assert.equal(b.layer, a.layer, 'same descriptor, annotations included');
    assert.ok(a.chunks.length > 1);
    assert.equal(b.chunks, a.chunks, 'same chunk table');
    assert.is(a.layer.annotations?.['org.lazybd.layer.uuid'], undefined, 'no uuid annotation since format 1.1');
    // Options are input too: another chunk size, another layer (reproducibly so).
    const c1 = await create('s1', 'c:v1', ['--chunk-size', '16384']);
    const c2 = await create('s2', 'c:v1', ['--chunk-size', '16384']);
    assert.is(c2.layer.digest, c1.layer.digest);
    assert.is.not(c1.layer.digest, a.layer.digest);
    const epoch = { SOURCE_DATE_EPOCH: '1700000000' };
    const d = await create('s3', 'd:v1', [], epoch);
    const e = await create('s4', 'e:v1', [], epoch);
    assert.is(d.created, '2023-11-14T22:13:20.000Z');
    assert.is(d.annotations['org.opencontainers.image.created'], d.created);
    assert.is(d.layer.digest, a.layer.digest);
    assert.is(e.config, d.config, 'same config');
    assert.is(e.manifest, d.manifest, 'same manifest');
    // In one store, a second tag of the same input adds no blob.
    const blobs = async () => (await readdir(join(dir, 's3', 'blobs', 'sha256'))).sort();
    const before = await blobs();
    assert.is((await create('s3', 'again:v1', [], epoch)).manifest, d.manifest);
    assert.equal(await blobs(), before);
    const later = await create('s4', 'later:v1', [], { SOURCE_DATE_EPOCH: '1700000001' });
    assert.is(later.layer.digest, d.layer.digest);
    assert.is.not(later.manifest, d.manifest, 'another time, another manifest');
  });
});

test('create gives the same layer with SEEK_DATA hole skipping (native) and reading everything (LAZYBD_NATIVE=0)', async () => {
  await withTempDir(async (dir) => {
    const raw = join(dir, 'holes.raw');
    const size = (24 << 20) + 3 * 512 + 100; // not a whole sector at the end
    await randomSparse(raw, size, 40);
    const h = await open(raw, 'r+');
    try {
      // Allocated zeroes (no file-system hole: only the zero check can skip them), a run across a
      // 4 MiB read boundary, data in the last partial sector, a lone non-zero byte.
      await h.write(Buffer.alloc(300_000), 0, 300_000, 9 << 20);
      await h.write(randomBytes(100_000), 0, 100_000, (8 << 20) - 50_000);
      await h.write(randomBytes(200), 0, 200, size - 200);
      await h.write(Buffer.from([7]), 0, 1, (13 << 20) + 12_345);
    } finally {
      await h.close();
    }
    for (const chunkSize of ['4096', '65536', '1048576']) {
      const made = await Promise.all(
        (['native', 'pure'] as const).map(async (path) => {
          const store = join(dir, `${path}-${chunkSize}`);
          const env = { LAZYBD_STORE: store, SOURCE_DATE_EPOCH: '1700000000', ...(path === 'pure' ? { LAZYBD_NATIVE: '0' } : {}) };
          const r = await lazybd(['create', raw, 'h:v1', '--json', '--chunk-size', chunkSize], env);
          assert.is(r.status, 0, r.stderr);
          const out = join(dir, `${path}-${chunkSize}.out`);
          const x = await lazybd(['export', 'h:v1', out], env);
          assert.is(x.status, 0, x.stderr);
          assert.is(await sha(out), await sha(raw), `${path} export is the input`);
          return storedImage(store, 'h:v1');
        }),
      );
      assert.equal(made[0]!.layer, made[1]!.layer, `chunk size ${chunkSize}: one layer descriptor on both paths`);
      assert.equal(made[0]!.chunks, made[1]!.chunks);
      assert.is(made[0]!.manifest, made[1]!.manifest);
    }
  });
});

test('a malformed SOURCE_DATE_EPOCH: one clear line, exit 2, nothing written', async () => {
  await withTempDir(async (dir) => {
    const env = { LAZYBD_STORE: join(dir, 'store'), SOURCE_DATE_EPOCH: '2023-11-14' };
    await writeFile(join(dir, 'x.raw'), randomBytes(8192));
    for (const args of [['create', join(dir, 'x.raw'), 'x:v1'], ['commit', join(dir, 'no-upper'), 'x:v2']]) {
      const r = await lazybd(args, env);
      assert.is(r.status, 2, `${args[0]}: ${r.stderr}`);
      assert.is(r.stderr, 'lazybd: SOURCE_DATE_EPOCH must be whole seconds since 1970-01-01 UTC, like `date +%s` prints (got "2023-11-14") (E_SOURCE_DATE_EPOCH)\n');
    }
    const images = await lazybd(['images', '--json'], { LAZYBD_STORE: env.LAZYBD_STORE });
    assert.equal(JSON.parse(images.stdout), []);
  });
});

test('a 1.0 layer with a random uuid (format-spec vector) still inspects, verifies and exports', async () => {
  await withTempDir(async (dir) => {
    const storeDir = join(dir, 'store');
    const store = await OciStore.open(storeDir);
    // The image as lazybd 0.x with format 1.0 stored it: config 1.0, uuid annotation.
    const blob = await readFile('format-spec/vectors/v1.0-random-uuid.layer');
    const trailer = decodeTrailer(blob.subarray(blob.length - TRAILER_SIZE));
    assert.ok(!trailer.legacyUuid.equals(Buffer.alloc(16)), 'the vector carries a uuid');
    const recipe = recipeOf('v1.0-random-uuid');
    const layer = {
      mediaType: MEDIA_TYPE_LAYER,
      ...(await store.putBlob(blob)),
      annotations: {
        'org.lazybd.layer.meta.offset': String(trailer.indexOffset),
        'org.lazybd.layer.meta.length': String(blob.length - trailer.indexOffset),
        'org.lazybd.layer.meta.digest': `sha256:${trailer.metaDigest.toString('hex')}`,
        'org.lazybd.layer.uuid': trailer.legacyUuid.toString('hex').replace(/^(.{8})(.{4})(.{4})(.{4})/, '$1-$2-$3-$4-'),
      },
    };
    const config = await store.putBlob(Buffer.from(JSON.stringify({ formatVersion: '1.0', virtualSize: recipe.virtualSize, chunkSize: recipe.chunkSize, created: '2024-01-01T00:00:00.000Z' })));
    const manifest = await store.putBlob(Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_TYPE_OCI_MANIFEST, config: { mediaType: MEDIA_TYPE_CONFIG, ...config }, layers: [layer] })));
    await store.tag('old:v1', { mediaType: MEDIA_TYPE_OCI_MANIFEST, ...manifest });
    const env = { LAZYBD_STORE: storeDir };
    const inspect = await lazybd(['inspect', 'old:v1', '--json'], env);
    assert.is(inspect.status, 0, inspect.stderr);
    assert.is(JSON.parse(inspect.stdout).layers[0].digest, layer.digest);
    const verify = await lazybd(['verify', 'old:v1'], env);
    assert.is(verify.status, 0, verify.stderr);
    const out = join(dir, 'old.out');
    assert.is((await lazybd(['export', 'old:v1', out], env)).status, 0);
    assert.ok((await readFile(out)).equals(modelDevice([recipe])), 'export matches the recipe');
  });
});

test('concurrent creates into one store all land; rm keeps shared blobs and frees the rest', async () => {
  await withTempDir(async (dir) => {
    const env = { LAZYBD_STORE: join(dir, 'store') };
    const n = 6;
    // Sharing on purpose, not by chance: one fixed time makes the six configs one blob, and
    // c5 has c4's bytes, so both tags name one layer and one manifest.
    const epoch = { ...env, SOURCE_DATE_EPOCH: '1700000000' };
    for (let i = 0; i < n - 1; i++) await writeFile(join(dir, `c${i}.raw`), randomBytes(256 << 10));
    await writeFile(join(dir, `c${n - 1}.raw`), await readFile(join(dir, `c${n - 2}.raw`)));
    const results = await Promise.all(Array.from({ length: n }, (_, i) => lazybd(['create', join(dir, `c${i}.raw`), `c${i}:v1`, '--json'], epoch)));
    results.forEach((r) => assert.is(r.status, 0, r.stderr));
    const images = JSON.parse((await lazybd(['images', '--json'], env)).stdout);
    assert.equal(images.map((i: { ref: string }) => i.ref).sort(), Array.from({ length: n }, (_, i) => `c${i}:v1`));
    for (let i = 0; i < n; i++) {
      const out = join(dir, `c${i}.out`);
      assert.is((await lazybd(['export', `c${i}:v1`, out], env)).status, 0);
      assert.is(await sha(out), await sha(join(dir, `c${i}.raw`)));
    }
    const tmp = await readdir(join(dir, 'store', 'tmp'));
    assert.is(tmp.length, 0, 'no temp files left behind');
    // Which blobs rm may free follows from the manifests, not from a count: identical
    // configs (or layers) of different images are one blob, and rm rightly keeps it.
    const store = await OciStore.open(env.LAZYBD_STORE);
    const refsOf = async (ref: string) => {
      const { descriptor, manifest } = await store.resolve(ref);
      return [descriptor.digest, manifest.config.digest, ...manifest.layers.map((l) => l.digest)];
    };
    const c1 = new Set(await refsOf('c1:v1'));
    const others = new Set<string>();
    for (let i = 0; i < n; i++) if (i !== 1) for (const d of await refsOf(`c${i}:v1`)) others.add(d);
    const onlyC1 = [...c1].filter((d) => !others.has(d));
    // c1's random input makes its layer (and so its manifest) its own; its config is everyone's.
    assert.ok(onlyC1.length >= 2, 'c1 has blobs of its own');
    assert.ok(others.has((await store.resolve('c1:v1')).manifest.config.digest), 'c1 shares its config');
    assert.is((await store.resolve('c5:v1')).descriptor.digest, (await store.resolve('c4:v1')).descriptor.digest, 'c4 and c5 share everything');
    const stored = async () => new Set((await readdir(join(dir, 'store', 'blobs', 'sha256'))).map((h) => `sha256:${h}`));
    const before = await stored();
    for (const d of [...c1, ...others]) assert.ok(before.has(d), `${d} stored before rm`);
    const rm = await lazybd(['rm', 'c1:v1', '--json'], env);
    assert.is(rm.status, 0, rm.stderr);
    const after = await stored();
    for (const d of onlyC1) assert.not.ok(after.has(d), `${d}, used only by c1, freed`);
    for (const d of others) assert.ok(after.has(d), `${d}, used by another image, kept`);
    assert.is(before.size - after.size, onlyC1.length, 'nothing but c1\'s own blobs freed');
    assert.is((await lazybd(['verify', 'c0:v1'], env)).status, 0);
    // A second tag on c0's manifest: removing c0 must keep every blob the alias uses.
    await store.tag('alias:v1', (await store.resolve('c0:v1')).descriptor);
    assert.is((await lazybd(['rm', 'c0:v1'], env)).status, 0);
    assert.equal(await stored(), after);
    assert.is((await lazybd(['verify', 'alias:v1'], env)).status, 0);
    // c5 is c4 blob for blob: removing it frees nothing and c4 stays whole.
    assert.is((await lazybd(['rm', 'c5:v1'], env)).status, 0);
    assert.equal(await stored(), after);
    assert.is((await lazybd(['verify', 'c4:v1'], env)).status, 0);
  });
});

test.run();
