import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { sha256Digest } from '../lib/registry/content-digest.js';
import { DeniedError, RegistryTlsError, UnauthorizedError } from '../lib/registry/errors.js';
import { RegistryClient, type RegistryClientOptions } from '../lib/registry/registry-client.js';
import { startRegistry, type RegistryServer } from './support/registry-server.js';
import { rejects } from './support/rejects.js';
import { makeSelfSignedCert, startTokenServer, type CertFiles, type TokenServer } from './support/token-server.js';
import { requireTools } from './support/tools.js';

let dir: string;
let cert: CertFiles;
let basic: RegistryServer | undefined;
let tokenServer: TokenServer;
let tokenRegistry: RegistryServer | undefined;
let tlsRegistry: RegistryServer | undefined;
const open: RegistryClient[] = [];

const USERS = { alice: 'wonderland', bob: 's3cr:et' };

test.before(async () => {
  if (!(await requireTools('docker-registry', 'htpasswd', 'openssl'))) return;
  dir = await mkdtemp(join(tmpdir(), 'lazybd-registry-auth-'));
  cert = await makeSelfSignedCert(dir);
  tokenServer = await startTokenServer({ cert, users: USERS });
  [basic, tokenRegistry, tlsRegistry] = await Promise.all([
    startRegistry({ auth: { kind: 'htpasswd', users: USERS } }),
    startRegistry({ auth: { kind: 'token', tokenServer, certFile: cert.certFile } }),
    startRegistry({ tls: cert }),
  ]);
});

test.after(async () => {
  await Promise.all(open.map((c) => c.close()));
  await Promise.all([basic?.stop(), tokenRegistry?.stop(), tlsRegistry?.stop(), tokenServer?.stop()]);
  if (dir) await rm(dir, { recursive: true, force: true });
});

function clientFor(server: RegistryServer, options: Partial<RegistryClientOptions> = {}): RegistryClient {
  const c = new RegistryClient({ registry: server.host, plainHttp: true, authFiles: false, ...options });
  open.push(c);
  return c;
}

const blobOf = (bytes: Buffer) => ({ digest: sha256Digest(bytes), size: bytes.length });

test('basic auth: the right password pushes and pulls', async () => {
  if (!basic) return;
  const c = clientFor(basic, { credentials: { username: 'bob', password: 's3cr:et' } });
  const bytes = randomBytes(10_000);
  assert.is(await c.uploadBlob('basic/a', blobOf(bytes), bytes), 'uploaded');
  assert.ok((await c.readBlobRange('basic/a', blobOf(bytes).digest, 100, 200)).equals(bytes.subarray(100, 300)));
});

test('basic auth: a wrong or missing password is a coded unauthorized error', async () => {
  if (!basic) return;
  const wrong = clientFor(basic, { credentials: { username: 'alice', password: 'nope' } });
  await rejects(wrong.hasBlob('basic/a', sha256Digest(Buffer.from('x'))), UnauthorizedError, (e) => e.code === 'E_REGISTRY_UNAUTHORIZED' && e.status === 401 && !e.retryable);
  const none = clientFor(basic);
  await rejects(none.getManifest('basic/a', 'latest'), UnauthorizedError);
});

test('basic auth: credentials come from $REGISTRY_AUTH_FILE when none are given', async () => {
  if (!basic) return;
  const file = join(dir, 'auth.json');
  await writeFile(file, JSON.stringify({ auths: { [basic.host]: { auth: Buffer.from('alice:wonderland').toString('base64') } } }));
  const saved = process.env.REGISTRY_AUTH_FILE;
  process.env.REGISTRY_AUTH_FILE = file;
  try {
    const c = clientFor(basic, { authFiles: true });
    const bytes = randomBytes(100);
    assert.is(await c.uploadBlob('basic/file', blobOf(bytes), bytes), 'uploaded');
  } finally {
    if (saved === undefined) delete process.env.REGISTRY_AUTH_FILE;
    else process.env.REGISTRY_AUTH_FILE = saved;
  }
});

test('token auth: challenge, token with basic credentials, push and pull; one token request per scope', async () => {
  if (!tokenRegistry) return;
  const c = clientFor(tokenRegistry, { credentials: { username: 'alice', password: 'wonderland' } });
  const before = tokenServer.requests.length;
  const bytes = randomBytes(50_000);
  const blob = blobOf(bytes);
  assert.is(await c.uploadBlob('tok/a', blob, bytes, { chunkSize: 16_384 }), 'uploaded');
  const reads = await Promise.all(Array.from({ length: 20 }, (_, i) => c.readBlobRange('tok/a', blob.digest, i * 1000, 1000)));
  reads.forEach((got, i) => assert.ok(got.equals(bytes.subarray(i * 1000, i * 1000 + 1000))));
  const issued = tokenServer.requests.slice(before);
  // HEAD (does the blob exist?) needs pull; the upload needs push; the 20 concurrent reads reuse the pull token.
  assert.equal(issued.map((r) => r.scopes.join(' ')), ['repository:tok/a:pull', 'repository:tok/a:pull,push']);
  assert.ok(issued.every((r) => r.user === 'alice'));
});

test('token auth: anonymous pulls, but its token cannot push (denied); a bad password is unauthorized', async () => {
  if (!tokenRegistry) return;
  const bytes = randomBytes(1000);
  await clientFor(tokenRegistry, { credentials: { username: 'alice', password: 'wonderland' } }).uploadBlob('tok/anon', blobOf(bytes), bytes);
  const anonymous = clientFor(tokenRegistry);
  assert.ok((await anonymous.readBlob('tok/anon', blobOf(bytes))).equals(bytes));
  const more = randomBytes(10);
  await rejects(anonymous.uploadBlob('tok/anon', blobOf(more), more), DeniedError, (e) => e.code === 'E_REGISTRY_DENIED');
  const wrong = clientFor(tokenRegistry, { credentials: { username: 'alice', password: 'bad' } });
  await rejects(wrong.readBlob('tok/anon', blobOf(bytes)), UnauthorizedError);
});

test('token auth: cross-repository mount asks for both scopes', async () => {
  if (!tokenRegistry) return;
  const c = clientFor(tokenRegistry, { credentials: { username: 'bob', password: 's3cr:et' } });
  const bytes = randomBytes(3000);
  await c.uploadBlob('tok/src', blobOf(bytes), bytes);
  assert.is(await c.mountBlob('tok/dst', blobOf(bytes).digest, 'tok/src'), true);
  assert.ok((await c.readBlob('tok/dst', blobOf(bytes))).equals(bytes));
});

test('token auth: a token the registry stops accepting mid-run is renewed on the 401 and reads go on', async () => {
  if (!tokenRegistry) return;
  const bytes = randomBytes(8192);
  const blob = blobOf(bytes);
  await clientFor(tokenRegistry, { credentials: { username: 'alice', password: 'wonderland' } }).uploadBlob('tok/expiry', blob, bytes);
  // The client is told the token lasts an hour; the registry refuses it after 2 s.
  Object.assign(tokenServer.lifetime, { expiresInS: 3600, acceptedForS: 2 });
  try {
    const c = clientFor(tokenRegistry, { credentials: { username: 'alice', password: 'wonderland' } });
    const before = tokenServer.requests.length;
    assert.ok((await c.readBlobRange('tok/expiry', blob.digest, 0, 100)).equals(bytes.subarray(0, 100)));
    assert.is(tokenServer.requests.length, before + 1);
    await new Promise((r) => setTimeout(r, 2200));
    const reads = await Promise.all(Array.from({ length: 8 }, (_, i) => c.readBlobRange('tok/expiry', blob.digest, i * 1024, 1024)));
    reads.forEach((got, i) => assert.ok(got.equals(bytes.subarray(i * 1024, i * 1024 + 1024))));
    assert.is(tokenServer.requests.length, before + 2, 'one renewal shared by the concurrent reads that hit the 401');
  } finally {
    Object.assign(tokenServer.lifetime, { expiresInS: 60, acceptedForS: 60 });
  }
});

test('token auth: a token is renewed before its expires_in runs out', async () => {
  if (!tokenRegistry) return;
  const bytes = randomBytes(100);
  await clientFor(tokenRegistry, { credentials: { username: 'alice', password: 'wonderland' } }).uploadBlob('tok/renew', blobOf(bytes), bytes);
  // The registry would accept the old token for a minute: only the client's own clock can prompt the renewal.
  Object.assign(tokenServer.lifetime, { expiresInS: 1, acceptedForS: 60 });
  try {
    const c = clientFor(tokenRegistry, { credentials: { username: 'alice', password: 'wonderland' } });
    const before = tokenServer.requests.length;
    await c.readBlob('tok/renew', blobOf(bytes));
    await c.readBlob('tok/renew', blobOf(bytes));
    assert.is(tokenServer.requests.length, before + 1, 'a fresh token is reused');
    await new Promise((r) => setTimeout(r, 1000));
    await c.readBlob('tok/renew', blobOf(bytes));
    assert.is(tokenServer.requests.length, before + 2, 'renewed once 90% of its lifetime had passed');
  } finally {
    Object.assign(tokenServer.lifetime, { expiresInS: 60, acceptedForS: 60 });
  }
});

test('https: a registry with a self-signed certificate is trusted through `ca`, refused without it', async () => {
  if (!tlsRegistry) return;
  const bytes = randomBytes(2048);
  const trusted = clientFor(tlsRegistry, { plainHttp: false, ca: await readFile(cert.certFile) });
  assert.is(await trusted.uploadBlob('tls/a', blobOf(bytes), bytes), 'uploaded');
  const untrusted = clientFor(tlsRegistry, { plainHttp: false });
  await rejects(untrusted.hasBlob('tls/a', blobOf(bytes).digest), RegistryTlsError, (e) => !e.retryable);
  const skipping = clientFor(tlsRegistry, { plainHttp: false, insecureSkipVerify: true });
  assert.ok((await skipping.readBlobRange('tls/a', blobOf(bytes).digest, 10, 20)).equals(bytes.subarray(10, 30)));
});

test.run();
