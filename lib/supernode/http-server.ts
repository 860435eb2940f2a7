import { once } from 'node:events';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { text } from 'node:stream/consumers';
import { LazybdError } from '../errors.js';
import { metricsRegistry, supernodeBytesServed, supernodeRequests } from '../metrics/metrics.js';
import { isDigest } from '../oci/manifest.js';
import { RegistryError } from '../registry/errors.js';
import { ChunkUnavailableError } from '../source/errors.js';
import type { SourceLogger } from '../source/source-logger.js';
import { BadRequestError, SupernodeError } from './errors.js';
import type { Supernode } from './supernode.js';
import type { TokenCheck } from './token-file.js';
import type { Upstream } from './upstreams.js';

export interface SupernodeServerOptions {
  host: string;
  port: number;
  tls?: { cert: Buffer; key: Buffer };
  tokens: TokenCheck;
  log: SourceLogger;
}

type Route = 'base' | 'manifest' | 'blob' | 'preheat' | 'metrics' | 'other';

const MANIFEST_PATH = /^\/v2\/(.+)\/manifests\/([^/]+)$/;
const BLOB_PATH = /^\/v2\/(.+)\/blobs\/([^/]+)$/;
const PREHEAT_PATH = /^\/lazybd\/v1\/preheat(?:\/([0-9a-f-]{36}))?$/;
/** Preheat requests are small JSON documents. */
const MAX_REQUEST_BODY = 64 * 1024;

/**
 * The supernode's HTTP front: the OCI distribution read API (`/v2/`, manifests and blobs,
 * GET and HEAD, one `Range` per request), `/metrics`, and the preheat API
 * (`POST /lazybd/v1/preheat`, `GET /lazybd/v1/preheat[/<id>]`). Every request needs a
 * bearer token from the token file; `?ns=<registry>` picks the upstream.
 */
export class SupernodeServer {
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {
    server.on('connection', (s: Socket) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
  }

  static async start(node: Supernode, o: SupernodeServerOptions): Promise<SupernodeServer> {
    const handler = (req: IncomingMessage, res: ServerResponse) => void handle(node, o, req, res);
    const server = o.tls ? createHttpsServer({ cert: o.tls.cert, key: o.tls.key }, handler) : createHttpServer(handler);
    server.keepAliveTimeout = 65_000;
    server.listen(o.port, o.host);
    await once(server, 'listening');
    const { port } = server.address() as AddressInfo;
    const host = o.host.includes(':') ? `[${o.host}]` : o.host;
    return new SupernodeServer(server, `${o.tls ? 'https' : 'http'}://${host}:${port}`);
  }

  async close(): Promise<void> {
    const closed = new Promise((resolve) => this.server.close(resolve));
    for (const s of this.sockets) s.destroy();
    await closed;
  }
}

async function handle(node: Supernode, o: SupernodeServerOptions, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://supernode');
  let route: Route = 'other';
  // Counted once the answer is settled; a body cut off mid-stream counts as its status.
  res.once('close', () => supernodeRequests.inc({ route, status: String(res.statusCode) }));
  try {
    res.setHeader('docker-distribution-api-version', 'registry/2.0');
    if (!o.tokens.accepts(req.headers.authorization)) {
      res.setHeader('www-authenticate', 'Bearer realm="lazybd-supernode"');
      return sendError(res, 401, 'UNAUTHORIZED', 'a bearer token from the supernode token file is required');
    }
    const path = url.pathname;
    let m: RegExpExecArray | null;
    if (path === '/v2/' || path === '/v2') {
      route = 'base';
      return sendJson(res, 200, {});
    }
    if (path === '/metrics') {
      route = 'metrics';
      res.writeHead(200, { 'content-type': metricsRegistry.contentType });
      return void res.end(await metricsRegistry.metrics());
    }
    if ((m = PREHEAT_PATH.exec(path))) {
      route = 'preheat';
      return await preheatRoute(node, req, res, m[1]);
    }
    const method = req.method ?? 'GET';
    const manifest = MANIFEST_PATH.exec(path);
    const blob = manifest ? null : BLOB_PATH.exec(path);
    if (manifest || blob) {
      route = manifest ? 'manifest' : 'blob';
      if (method !== 'GET' && method !== 'HEAD') return sendError(res, 405, 'UNSUPPORTED', 'the supernode is read-only');
      const upstream = node.upstreams.resolve(url.searchParams.get('ns'));
      const [, repository, reference] = (manifest ?? blob)! as unknown as [string, string, string];
      if (manifest) return await manifestRoute(node, upstream, repository, reference, method, res);
      if (!isDigest(reference)) throw new BadRequestError(`${reference} is not a sha256 digest`, 'DIGEST_INVALID');
      return await blobRoute(node, upstream, repository, reference, method, req.headers.range, res);
    }
    return sendError(res, 404, 'NOT_FOUND', `no route for ${path}`);
  } catch (e) {
    const [status, code] = statusOf(e);
    if (status >= 500) o.log.warn(`supernode: ${req.method} ${url.pathname}: ${(e as Error).message}`);
    if (res.headersSent) return void res.destroy();
    return sendError(res, status, code, (e as Error).message);
  }
}

async function manifestRoute(node: Supernode, upstream: Upstream, repository: string, reference: string, method: string, res: ServerResponse): Promise<void> {
  const m = await node.manifests.get(upstream.ns, upstream.client, repository, reference);
  node.catalog.noteManifest(m.bytes);
  res.writeHead(200, { 'content-type': m.mediaType, 'content-length': m.bytes.length, 'docker-content-digest': m.digest });
  if (method === 'HEAD') return void res.end();
  supernodeBytesServed.inc({ route: 'manifest' }, m.bytes.length);
  res.end(m.bytes);
}

async function blobRoute(node: Supernode, upstream: Upstream, repository: string, digest: string, method: string, rangeHeader: string | undefined, res: ServerResponse): Promise<void> {
  const headers = { 'docker-content-digest': digest, 'accept-ranges': 'bytes', 'content-type': 'application/octet-stream' };
  if (method === 'HEAD' && rangeHeader === undefined) {
    res.writeHead(200, { ...headers, 'content-length': await node.catalog.size(upstream, repository, digest) });
    return void res.end();
  }
  const layout = await node.catalog.layout(upstream, repository, digest);
  const range = rangeHeader === undefined ? { start: 0, end: layout.size - 1 } : parseRange(rangeHeader, layout.size);
  if (!range) {
    res.writeHead(416, { ...headers, 'content-range': `bytes */${layout.size}` });
    return void res.end();
  }
  const length = range.end - range.start + 1;
  res.writeHead(rangeHeader === undefined ? 200 : 206, {
    ...headers,
    'content-length': length,
    ...(rangeHeader === undefined ? {} : { 'content-range': `bytes ${range.start}-${range.end}/${layout.size}` }),
  });
  if (method === 'HEAD' || length === 0) return void res.end();
  for await (const part of node.reader.read(upstream, repository, layout, range.start, length)) {
    if (res.destroyed) return;
    supernodeBytesServed.inc({ route: 'blob' }, part.length);
    if (!res.write(part)) await drained(res);
  }
  res.end();
}

async function preheatRoute(node: Supernode, req: IncomingMessage, res: ServerResponse, id: string | undefined): Promise<void> {
  if (req.method === 'GET') {
    if (id === undefined) return sendJson(res, 200, { jobs: node.preheat.list() });
    const job = node.preheat.get(id);
    return job ? sendJson(res, 200, job) : sendError(res, 404, 'NOT_FOUND', `no preheat job ${id}`);
  }
  if (req.method !== 'POST' || id !== undefined) return sendError(res, 405, 'UNSUPPORTED', 'POST /lazybd/v1/preheat creates a job; GET reads one');
  if (Number(req.headers['content-length'] ?? 0) > MAX_REQUEST_BODY) throw new BadRequestError(`preheat request over ${MAX_REQUEST_BODY} bytes`);
  let body: unknown;
  try {
    body = JSON.parse(await text(req));
  } catch {
    throw new BadRequestError('preheat request body is not JSON');
  }
  const { job, created } = await node.preheat.create(body);
  sendJson(res, created ? 202 : 200, job);
}

/** Resolves when the response can take more, or is gone; leaves no listener behind (a big blob waits many times). */
function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

/** One `bytes=` range of a blob of `size` bytes, or undefined when it cannot be satisfied. Several ranges are refused. */
export function parseRange(header: string, size: number): { start: number; end: number } | undefined {
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) {
    if (header.includes(',')) throw new BadRequestError('one byte range per request');
    throw new BadRequestError(`unusable Range header ${JSON.stringify(header)}`);
  }
  if (m[1] === '') {
    const n = Number(m[2]);
    return n > 0 && size > 0 ? { start: Math.max(0, size - n), end: size - 1 } : undefined;
  }
  const start = Number(m[1]);
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  return start <= end && start < size ? { start, end } : undefined;
}

function statusOf(e: unknown): [number, string] {
  if (e instanceof SupernodeError) return [e.status, e.registryCode];
  if (e instanceof RegistryError) {
    if (e.status === 404) return [404, e.registryCodes[0] ?? 'NOT_FOUND'];
    return [e.retryable ? 503 : 502, 'UNAVAILABLE'];
  }
  if (e instanceof ChunkUnavailableError) return [503, 'UNAVAILABLE'];
  if (e instanceof LazybdError) return [502, 'UNAVAILABLE'];
  return [500, 'UNKNOWN'];
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const bytes = Buffer.from(JSON.stringify(body));
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': bytes.length });
  res.end(bytes);
}

function sendError(res: ServerResponse, status: number, code: string, message: string): void {
  sendJson(res, status, { errors: [{ code, message }] });
}
