import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { sha256Digest } from '../lib/registry/content-digest.js';
import { pushImage } from '../lib/registry/image-transfer.js';
import { RegistryClient } from '../lib/registry/registry-client.js';
import { startRegistry, type RegistryServer } from './support/registry-server.js';
import { requireTools } from './support/tools.js';

const run = promisify(execFile);
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

let dir: string;
let registry: RegistryServer | undefined;
let client: RegistryClient;

test.before(async () => {
  if (!(await requireTools('docker-registry', 'skopeo'))) return;
  dir = await mkdtemp(join(tmpdir(), 'lazybd-skopeo-'));
  registry = await startRegistry();
  client = new RegistryClient({ registry: registry.host, plainHttp: true, authFiles: false });
});

test.after(async () => {
  await client?.close();
  await registry?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const descriptorOf = (mediaType: string, bytes: Buffer) => ({ mediaType, digest: sha256Digest(bytes), size: bytes.length });

/** A lazybd-shaped image: lazybd config and layer media types in an OCI manifest. */
function lazybdImage() {
  const config = Buffer.from(JSON.stringify({ lazybd: { version: 1, size: 1 << 20 } }));
  const layers = [randomBytes(70_000), randomBytes(130_000)];
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: descriptorOf('application/vnd.lazybd.config.v1+json', config),
    layers: layers.map((l) => descriptorOf('application/vnd.lazybd.layer.v1', l)),
  }));
  return { config, layers, manifest };
}

/** skopeo with a private, empty auth file so nothing on this machine leaks in. */
function skopeo(args: string[]) {
  return run('skopeo', args, { env: { ...process.env, REGISTRY_AUTH_FILE: join(dir, 'no-auth.json') }, encoding: 'buffer', maxBuffer: 64 << 20 });
}

test('skopeo reads an image our client pushed: same manifest bytes, same blob bytes', async () => {
  if (!registry) return;
  const { config, layers, manifest } = lazybdImage();
  await pushImage(client, 'interop/ours', 'v1', {
    manifest,
    blobs: [config, ...layers].map((b) => ({ descriptor: descriptorOf('', b), open: () => Readable.from([b]) })),
  });
  const ref = `docker://${registry.host}/interop/ours:v1`;
  const { stdout } = await skopeo(['inspect', '--raw', '--tls-verify=false', ref]);
  assert.ok(stdout.equals(manifest), 'skopeo inspect --raw returns the manifest we pushed');

  const out = join(dir, 'ours-dir');
  await skopeo(['copy', '--quiet', '--src-tls-verify=false', '--preserve-digests', ref, `dir:${out}`]);
  assert.ok((await readFile(join(out, 'manifest.json'))).equals(manifest));
  for (const blob of [config, ...layers]) {
    const file = join(out, sha256Digest(blob).slice('sha256:'.length));
    assert.ok((await readFile(file)).equals(blob), `blob ${file} as skopeo downloaded it`);
  }
});

test('our client reads an image skopeo pushed from an OCI layout', async () => {
  if (!registry) return;
  const { config, layers, manifest } = lazybdImage();
  const layout = join(dir, 'layout');
  await mkdir(join(layout, 'blobs', 'sha256'), { recursive: true });
  for (const blob of [config, ...layers, manifest]) await writeFile(join(layout, 'blobs', 'sha256', sha256Digest(blob).slice(7)), blob);
  await writeFile(join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  await writeFile(join(layout, 'index.json'), JSON.stringify({
    schemaVersion: 2,
    manifests: [{ ...descriptorOf(OCI_MANIFEST, manifest), annotations: { 'org.opencontainers.image.ref.name': 'v1' } }],
  }));
  await skopeo(['copy', '--quiet', '--dest-tls-verify=false', '--preserve-digests', `oci:${layout}:v1`, `docker://${registry.host}/interop/theirs:v1`]);

  const pulled = await client.getManifest('interop/theirs', 'v1');
  assert.ok(pulled.bytes.equals(manifest));
  assert.is(pulled.digest, sha256Digest(manifest));
  assert.ok((await client.readBlob('interop/theirs', descriptorOf('', config))).equals(config));
  const layer = layers[1]!;
  assert.ok((await client.readBlobRange('interop/theirs', sha256Digest(layer), 4096, 65536)).equals(layer.subarray(4096, 4096 + 65536)));
});

test.run();
