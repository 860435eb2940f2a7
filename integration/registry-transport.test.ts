import { randomBytes } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { sha256Digest } from '../lib/registry/content-digest.js';
import {
  DigestMismatchError,
  RangeUnsupportedError,
  RegistryNetworkError,
  RegistryServerError,
  RegistryTimeoutError,
  TooManyRequestsError,
} from '../lib/registry/errors.js';
import { RegistryClient, type RegistryClientOptions } from '../lib/registry/registry-client.js';
import { freePort } from './support/registry-server.js';
import { rejects } from './support/rejects.js';

// Behaviour docker-registry never shows (redirects to blob storage that ignores
// Range, corrupt storage, stalls, overload), from small in-process HTTP servers.

const CREDENTIALS = { username: 'u', password: 'p' };
const BASIC = `Basic ${Buffer.from('u:p').toString('base64')}`;
const blob = randomBytes(100_000);
const digest = sha256Digest(blob);
const corrupt = Buffer.from(blob);
corrupt[500] ^= 0xff;

const servers: Server[] = [];
const clients: RegistryClient[] = [];

async function listen(host: string, handler: RequestListener): Promise<string> {
  const server = createServer(handler);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  return `${host}:${(server.address() as AddressInfo).port}`;
}

function clientFor(registry: string, options: Partial<RegistryClientOptions> = {}): RegistryClient {
  const c = new RegistryClient({ registry, plainHttp: true, authFiles: false, ...options });
  clients.push(c);
  return c;
}

test.after(async () => {
  await Promise.all(clients.map((c) => c.close()));
  for (const s of servers) s.closeAllConnections();
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
});

/** Storage on another host that ignores Range; /bad serves corrupted bytes. */
const storageSaw: IncomingHttpHeaders[] = [];
let storage: string;
/** A registry front that wants basic auth and redirects blob GETs to storage. */
const frontSaw: IncomingHttpHeaders[] = [];
let front: string;

test.before(async () => {
  storage = await listen('127.0.0.2', (req, res) => {
    storageSaw.push(req.headers);
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': blob.length });
    res.end(req.url?.startsWith('/bad') ? corrupt : blob);
  });
  front = await listen('127.0.0.1', (req, res) => {
    frontSaw.push(req.headers);
    if (req.headers.authorization !== BASIC) {
      res.writeHead(401, { 'www-authenticate': 'Basic realm="front"', 'content-type': 'application/json' });
      return res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] }));
    }
    const bad = req.url?.includes('/bad/');
    res.writeHead(307, { location: `http://${storage}/${bad ? 'bad' : 'good'}?sig=x` });
    res.end();
  });
});

test('blob reads follow a redirect to storage on another host without sending it the credentials', async () => {
  const c = clientFor(front, { credentials: CREDENTIALS });
  storageSaw.length = frontSaw.length = 0;
  const sink: Buffer[] = [];
  await c.getBlob('r', { digest, size: blob.length }, new Writable({ write: (chunk, _e, done) => (sink.push(chunk), done()) }));
  assert.ok(Buffer.concat(sink).equals(blob));
  assert.ok(frontSaw.some((h) => h.authorization === BASIC), 'the registry got the credentials');
  assert.ok(storageSaw.length > 0 && storageSaw.every((h) => h.authorization === undefined), 'storage never saw them');
});

test('a range answered with the whole blob (200) is sliced to the bytes asked for, or refused', async () => {
  const slicing = clientFor(front, { credentials: CREDENTIALS });
  for (const [offset, length] of [[0, 10], [12_345, 4096], [blob.length - 7, 7]] as const) {
    assert.ok((await slicing.readBlobRange('r', digest, offset, length)).equals(blob.subarray(offset, offset + length)));
  }
  assert.ok(storageSaw.at(-1)?.range === `bytes=${blob.length - 7}-${blob.length - 1}`, 'the Range header survives the redirect');
  const refusing = clientFor(front, { credentials: CREDENTIALS, rangeFallback: 'refuse' });
  await rejects(refusing.readBlobRange('r', digest, 100, 100), RangeUnsupportedError, (e) => e.code === 'E_REGISTRY_RANGE_UNSUPPORTED' && !e.retryable);
});

test('corrupted blob bytes from storage are caught by digest verification', async () => {
  const c = clientFor(front, { credentials: CREDENTIALS });
  await rejects(c.readBlob('bad', { digest, size: blob.length }), DigestMismatchError, (e) => e.expected === digest && e.actual === sha256Digest(corrupt) && e.retryable);
});

test('a server that never answers times out waiting for headers (retryable)', async () => {
  const silent = await listen('127.0.0.1', () => undefined);
  const c = clientFor(silent, { timeouts: { headersMs: 300 } });
  await rejects(c.getManifest('x', 'latest'), RegistryTimeoutError, (e) => e.phase === 'headers' && e.retryable && e.code === 'E_REGISTRY_TIMEOUT');
});

test('a body that stalls times out (retryable), or is aborted by the caller', async () => {
  const stalling = await listen('127.0.0.1', (_req, res) => {
    res.writeHead(206, { 'content-range': 'bytes 0-999/1000', 'content-length': 1000 });
    res.write(Buffer.alloc(10));
  });
  const c = clientFor(stalling, { timeouts: { bodyMs: 300 } });
  await rejects(c.readBlobRange('x', digest, 0, 1000), RegistryTimeoutError, (e) => e.phase === 'body' && e.retryable);

  // The caller may give up sooner (a disconnected NBD client, a cancelled prefetch).
  const controller = new AbortController();
  const reason = new Error('client went away');
  setTimeout(() => controller.abort(reason), 50);
  const started = Date.now();
  await rejects(c.readBlobRange('x', digest, 0, 1000, controller.signal), Error, (e) => e === reason);
  assert.ok(Date.now() - started < 250, 'aborted before the body timeout');
});

test('nobody listening is a retryable network error', async () => {
  const c = clientFor(`127.0.0.1:${await freePort()}`);
  await rejects(c.headManifest('x', 'latest'), RegistryNetworkError, (e) => e.retryable && e.code === 'E_REGISTRY_NETWORK');
});

test('overload answers are retryable, with Retry-After when given', async () => {
  const busy = await listen('127.0.0.1', (req, res) => {
    if (req.url?.includes('/manifests/')) {
      res.writeHead(429, { 'retry-after': '2', 'content-type': 'application/json' });
      return res.end(JSON.stringify({ errors: [{ code: 'TOOMANYREQUESTS', message: 'slow down' }] }));
    }
    res.writeHead(503);
    res.end('maintenance');
  });
  const c = clientFor(busy);
  await rejects(c.getManifest('x', 'latest'), TooManyRequestsError, (e) => e.retryable && e.retryAfterMs === 2000 && e.registryCodes[0] === 'TOOMANYREQUESTS');
  await rejects(c.readBlobRange('x', digest, 0, 10), RegistryServerError, (e) => e.retryable && e.status === 503 && /maintenance/.test(e.message));
});

test.run();
