import { createHash, randomBytes, randomInt } from 'node:crypto';
import { execFile } from 'node:child_process';
import { open, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { OciStore } from '../lib/store/oci-store.js';
import { lazybd, withTempDir } from './support/cli.js';
import { requireTools } from './support/tools.js';

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
    assert.is(chunk.status, 1);
    assert.match(chunk.stderr, /E_LAYER_WRITE/);
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

test('concurrent creates into one store all land; rm keeps shared blobs and frees the rest', async () => {
  await withTempDir(async (dir) => {
    const env = { LAZYBD_STORE: join(dir, 'store') };
    const n = 6;
    for (let i = 0; i < n; i++) await writeFile(join(dir, `c${i}.raw`), randomBytes(256 << 10));
    const results = await Promise.all(Array.from({ length: n }, (_, i) => lazybd(['create', join(dir, `c${i}.raw`), `c${i}:v1`, '--json'], env)));
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
    // c1's random input makes its layer (and so its manifest) its own.
    assert.ok(onlyC1.length >= 2, 'c1 has blobs of its own');
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
  });
});

test.run();
