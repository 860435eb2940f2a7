import { randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseReference, type RemoteReference } from '../lib/oci/reference.js';
import { sha256Digest } from '../lib/registry/content-digest.js';
import { BlobUnknownError, DigestMismatchError, ManifestUnknownError, RangeNotSatisfiableError, RegistryRejectedError } from '../lib/registry/errors.js';
import { pullManifest, pushImage } from '../lib/registry/image-transfer.js';
import { RegistryClient } from '../lib/registry/registry-client.js';
import { startRegistry, type RegistryServer } from './support/registry-server.js';
import { rejects } from './support/rejects.js';
import { requireTools } from './support/tools.js';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

let registry: RegistryServer | undefined;
let client: RegistryClient;

test.before(async () => {
  if (!(await requireTools('docker-registry'))) return;
  registry = await startRegistry();
  client = new RegistryClient({ registry: registry.host, plainHttp: true, authFiles: false });
});

test.after(async () => {
  await client?.close();
  await registry?.stop();
});

const blobOf = (bytes: Buffer) => ({ digest: sha256Digest(bytes), size: bytes.length });

/** A stream that hands the bytes out in uneven pieces, as a file or socket would. */
const streamOf = (bytes: Buffer) => Readable.from((function* () {
  for (let at = 0, step = 1000; at < bytes.length; at += step, step = step * 3 + 7) yield bytes.subarray(at, at + step);
})());

const mustNotOpen = (): Readable => {
  throw new Error('the client opened content it did not need');
};

class Collect extends Writable {
  parts: Buffer[] = [];
  override _write(chunk: Buffer, _enc: BufferEncoding, done: () => void) {
    this.parts.push(chunk);
    done();
  }
  get bytes() {
    return Buffer.concat(this.parts);
  }
}

function manifestFor(config: Buffer, layers: Buffer[]): Buffer {
  return Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: 'application/vnd.lazybd.config.v1+json', ...blobOf(config) },
    layers: layers.map((l) => ({ mediaType: 'application/vnd.lazybd.layer.v1', ...blobOf(l) })),
  }));
}

test('monolithic upload from a stream, then HEAD, GET and streamed GET return the same bytes', async () => {
  if (!registry) return;
  const bytes = randomBytes(300_000);
  const blob = blobOf(bytes);
  let progress = 0;
  assert.is(await client.hasBlob('mono/a', blob.digest), false);
  assert.is(await client.uploadBlob('mono/a', blob, () => streamOf(bytes), { onProgress: (n) => (progress += n) }), 'uploaded');
  assert.is(progress, bytes.length);
  assert.equal(await client.headBlob('mono/a', blob.digest), { size: bytes.length });
  assert.ok((await client.readBlob('mono/a', blob)).equals(bytes));
  const sink = new Collect();
  let pulled = 0;
  await client.getBlob('mono/a', blob, sink, (n) => (pulled += n));
  assert.ok(sink.bytes.equals(bytes));
  assert.is(pulled, bytes.length);
});

test('a blob the repository already has is not uploaded again (HEAD first)', async () => {
  if (!registry) return;
  const bytes = randomBytes(1000);
  assert.is(await client.uploadBlob('skip/a', blobOf(bytes), bytes), 'uploaded');
  assert.is(await client.uploadBlob('skip/a', blobOf(bytes), mustNotOpen), 'exists');
});

test('chunked upload (PATCH with Content-Range, then PUT ?digest=) from a stream and from a buffer', async () => {
  if (!registry) return;
  const bytes = randomBytes(1_300_000);
  const chunkSize = 256 * 1024;
  const calls: number[] = [];
  assert.is(await client.uploadBlob('chunked/stream', blobOf(bytes), () => streamOf(bytes), { chunkSize, onProgress: (n) => calls.push(n) }), 'uploaded');
  assert.equal(calls, [chunkSize, chunkSize, chunkSize, chunkSize, bytes.length - 4 * chunkSize], 'one PATCH per chunk, the last one short');
  assert.ok((await client.readBlob('chunked/stream', blobOf(bytes))).equals(bytes));

  const other = randomBytes(600_000);
  assert.is(await client.uploadBlob('chunked/buffer', blobOf(other), other, { chunkSize }), 'uploaded');
  assert.ok((await client.readBlob('chunked/buffer', blobOf(other))).equals(other));
});

test('the registry rejects an upload whose bytes do not match the digest', async () => {
  if (!registry) return;
  const bytes = randomBytes(5000);
  const lie = { digest: sha256Digest(randomBytes(10)), size: bytes.length };
  await rejects(client.uploadBlob('reject/a', lie, bytes), RegistryRejectedError, (e) => e.registryCodes.includes('DIGEST_INVALID'));
  assert.is(await client.hasBlob('reject/a', lie.digest), false);
});

test('cross-repository mount links a blob without sending it; a missing source falls back', async () => {
  if (!registry) return;
  const bytes = randomBytes(20_000);
  const blob = blobOf(bytes);
  await client.uploadBlob('mount/src', blob, bytes);
  assert.is(await client.mountBlob('mount/dst', blob.digest, 'mount/src'), true);
  assert.ok((await client.readBlob('mount/dst', blob)).equals(bytes));
  assert.is(await client.uploadBlob('mount/dst2', blob, mustNotOpen, { mountFrom: 'mount/src' }), 'mounted');

  const lone = randomBytes(100);
  assert.is(await client.mountBlob('mount/dst', blobOf(lone).digest, 'mount/src'), false);
  assert.is(await client.uploadBlob('mount/dst', blobOf(lone), lone, { mountFrom: 'mount/src' }), 'uploaded');
});

test('manifest put/get/head by tag and by digest', async () => {
  if (!registry) return;
  const config = Buffer.from('{"lazybd":1}');
  const layer = randomBytes(4096);
  await client.uploadBlob('man/a', blobOf(config), config);
  await client.uploadBlob('man/a', blobOf(layer), layer);
  const manifest = manifestFor(config, [layer]);
  const digest = await client.putManifest('man/a', 'v1', manifest, OCI_MANIFEST);
  assert.is(digest, sha256Digest(manifest));

  const byTag = await client.getManifest('man/a', 'v1');
  assert.ok(byTag.bytes.equals(manifest));
  assert.is(byTag.digest, digest);
  assert.is(byTag.mediaType, OCI_MANIFEST);
  const byDigest = await client.getManifest('man/a', digest);
  assert.ok(byDigest.bytes.equals(manifest));
  assert.equal(await client.headManifest('man/a', 'v1'), { digest, size: manifest.length, mediaType: OCI_MANIFEST });
  assert.equal(await client.headManifest('man/a', digest), { digest, size: manifest.length, mediaType: OCI_MANIFEST });
  assert.is(await client.putManifest('man/a', digest, manifest, OCI_MANIFEST), digest, 'put by digest');
});

test('ranged reads return exactly the bytes asked for, many at once', async () => {
  if (!registry) return;
  const bytes = randomBytes(1 << 20);
  const blob = blobOf(bytes);
  await client.uploadBlob('range/a', blob, bytes);
  for (const [offset, length] of [[0, 1], [bytes.length - 1, 1], [0, bytes.length], [12345, 65536], [65536, 4096]] as const) {
    const got = await client.readBlobRange('range/a', blob.digest, offset, length);
    assert.ok(got.equals(bytes.subarray(offset, offset + length)), `range ${offset}+${length}`);
  }
  const reads = Array.from({ length: 64 }, (_, i) => {
    const offset = (i * 16_411) % (bytes.length - 4096);
    return client.readBlobRange('range/a', blob.digest, offset, 4096).then((got) => got.equals(bytes.subarray(offset, offset + 4096)));
  });
  assert.equal(await Promise.all(reads), Array(64).fill(true));
});

test('ranges past the end of a blob are refused with a coded error', async () => {
  if (!registry) return;
  const bytes = randomBytes(1000);
  const blob = blobOf(bytes);
  await client.uploadBlob('range/b', blob, bytes);
  await rejects(client.readBlobRange('range/b', blob.digest, 2000, 10), RangeNotSatisfiableError);
  await rejects(client.readBlobRange('range/b', blob.digest, 990, 20), RangeNotSatisfiableError);
});

test('unknown manifests and blobs give coded, non-retryable not-found errors', async () => {
  if (!registry) return;
  const nowhere = sha256Digest(randomBytes(8));
  await client.uploadBlob('nf/a', blobOf(Buffer.from('x')), Buffer.from('x'));
  for (const call of [() => client.getManifest('nf/a', 'nope'), () => client.getManifest('nf/none', 'latest'), () => client.headManifest('nf/a', nowhere)]) {
    await rejects(call(), ManifestUnknownError, (e) => e.code === 'E_REGISTRY_MANIFEST_UNKNOWN' && !e.retryable && e.status === 404);
  }
  for (const call of [() => client.headBlob('nf/a', nowhere), () => client.readBlobRange('nf/a', nowhere, 0, 10), () => client.readBlob('nf/a', { digest: nowhere, size: 1 })]) {
    await rejects(call(), BlobUnknownError, (e) => e.code === 'E_REGISTRY_BLOB_UNKNOWN' && !e.retryable);
  }
});

test('a download that does not match its descriptor fails with a digest mismatch', async () => {
  if (!registry) return;
  const bytes = randomBytes(3000);
  const blob = blobOf(bytes);
  await client.uploadBlob('dm/a', blob, bytes);
  await rejects(client.getBlob('dm/a', { ...blob, size: 2999 }, new Collect()), DigestMismatchError, (e) => e.retryable);
  await rejects(client.readBlob('dm/a', { ...blob, size: 3001 }), DigestMismatchError);
});

test('a failing sink surfaces as its own error, not as a network error', async () => {
  if (!registry) return;
  const bytes = randomBytes(200_000);
  await client.uploadBlob('sink/a', blobOf(bytes), bytes);
  const full = Object.assign(new Error('no space left on device'), { code: 'ENOSPC' });
  const sink = new Writable({ write: (_chunk, _enc, done) => done(full) });
  const err = await rejects(client.getBlob('sink/a', blobOf(bytes), sink), Error);
  assert.is(err, full);
});

test('pushImage uploads what is missing, then the manifest; pullManifest reads it back', async () => {
  if (!registry) return;
  const config = Buffer.from('{"lazybd":"config"}');
  const layers = [randomBytes(200_000), randomBytes(50_000)];
  const manifest = manifestFor(config, layers);
  const blobs = [config, ...layers].map((b) => ({ descriptor: blobOf(b), open: () => streamOf(b) }));
  const total = config.length + layers[0]!.length + layers[1]!.length;

  let progress = 0;
  const first = await pushImage(client, 'push/app', 'v1', { manifest, blobs, chunkSize: 64 * 1024, onProgress: (n) => (progress += n) });
  assert.is(progress, total);
  assert.equal([...first.outcomes.values()], ['uploaded', 'uploaded', 'uploaded']);

  progress = 0;
  const again = await pushImage(client, 'push/app', 'v2', { manifest, blobs: blobs.map((b) => ({ ...b, open: mustNotOpen })), onProgress: (n) => (progress += n) });
  assert.equal([...again.outcomes.values()], ['exists', 'exists', 'exists']);
  assert.is(progress, total, 'skipped blobs still count towards the total');
  assert.is(again.digest, first.digest);

  const mounted = await pushImage(client, 'push/copy', 'v1', { manifest, blobs: blobs.map((b) => ({ ...b, open: mustNotOpen })), mountFrom: 'push/app' });
  assert.equal([...mounted.outcomes.values()], ['mounted', 'mounted', 'mounted']);

  const ref = parseReference(`${registry.host}/push/app:v1`) as RemoteReference;
  const pulled = await pullManifest(client, ref);
  assert.ok(pulled.bytes.equals(manifest));
  assert.is(pulled.digest, first.digest);
  const pinned = await pullManifest(client, parseReference(`${registry.host}/push/copy@${first.digest}`) as RemoteReference);
  assert.ok(pinned.bytes.equals(manifest));
});

test.run();
