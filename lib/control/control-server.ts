import { chmod } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { once } from 'node:events';
import { LazybdError } from '../errors.js';
import {
  API_PREFIX,
  httpStatusOf,
  type AddCloneRequest,
  type AddExportRequest,
  type CommitCloneRequest,
  type CommitCloneResponse,
  type DaemonStatus,
  type ErrorBody,
  type ExportStatus,
  type RemoveOptions,
  type RemovedResponse,
} from './api.js';
import { ControlError } from './errors.js';

/** What the daemon does for the control API; the server only decodes, checks and dispatches. */
export interface ControlHandler {
  status(): DaemonStatus;
  addExport(request: AddExportRequest): Promise<ExportStatus>;
  removeExport(name: string, options: RemoveOptions): Promise<RemovedResponse>;
  addClone(request: AddCloneRequest): Promise<ExportStatus>;
  removeClone(name: string, options: RemoveOptions): Promise<RemovedResponse>;
  commitClone(name: string, request: CommitCloneRequest): Promise<CommitCloneResponse>;
}

const MAX_BODY = 64 * 1024;

/**
 * The control API on a unix socket. Only the owner may connect (mode 0600, set before the
 * first request can arrive: the daemon creates the socket inside a 0700 directory, and
 * the mode is fixed right after bind).
 */
export class ControlServer {
  private constructor(private readonly http: Server) {}

  static async listen(path: string, handler: ControlHandler): Promise<ControlServer> {
    const http = createServer((req, res) => void respond(handler, req, res));
    http.listen(path);
    await once(http, 'listening');
    await chmod(path, 0o600);
    return new ControlServer(http);
  }

  async close(): Promise<void> {
    const closed = once(this.http, 'close');
    this.http.close();
    this.http.closeAllConnections();
    await closed;
  }
}

async function respond(handler: ControlHandler, req: IncomingMessage, res: ServerResponse): Promise<void> {
  try {
    const result = await route(handler, req);
    send(res, req.method === 'POST' ? 201 : 200, result);
  } catch (e) {
    const err = e instanceof LazybdError ? e : new LazybdError('E_INTERNAL', (e as Error).message);
    const body: ErrorBody = { error: { code: err.code, message: err.message, exitStatus: err.exitStatus } };
    send(res, httpStatusOf(err.code, err.exitStatus), body);
  }
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

async function route(handler: ControlHandler, req: IncomingMessage): Promise<unknown> {
  const url = new URL(req.url ?? '/', 'http://control');
  const parts = url.pathname.startsWith(`${API_PREFIX}/`) ? url.pathname.slice(API_PREFIX.length + 1).split('/').map(decodeURIComponent) : [];
  const method = req.method ?? 'GET';
  const remove: RemoveOptions = { force: flag(url, 'force'), keep: flag(url, 'keep') };
  const [collection, name, action] = parts;
  if (parts.length === 1 && collection === 'status' && method === 'GET') return handler.status();
  if (collection === 'exports' || collection === 'clones') {
    const kind = collection === 'exports' ? 'image' : 'clone';
    if (parts.length === 1 && method === 'GET') return handler.status().exports.filter((e) => collection === 'exports' || e.kind === kind);
    if (parts.length === 1 && method === 'POST') {
      const body = await readJson(req);
      return kind === 'image'
        ? handler.addExport({ image: field(body, 'image'), name: optionalField(body, 'name') })
        : handler.addClone({ image: field(body, 'image'), name: field(body, 'name') });
    }
    if (parts.length === 2 && method === 'DELETE') return kind === 'image' ? handler.removeExport(name!, remove) : handler.removeClone(name!, remove);
    if (parts.length === 3 && kind === 'clone' && action === 'commit' && method === 'POST') return handler.commitClone(name!, { ref: field(await readJson(req), 'ref') });
  }
  throw new ControlError('E_CONTROL_UNKNOWN_ROUTE', `no ${method} ${url.pathname} in the control API`);
}

function flag(url: URL, name: string): boolean {
  const v = url.searchParams.get(name);
  return v === '1' || v === 'true';
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY) throw new ControlError('E_CONTROL_BAD_REQUEST', `request body over ${MAX_BODY} bytes`);
    chunks.push(chunk);
  }
  let body: unknown;
  try {
    body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new ControlError('E_CONTROL_BAD_REQUEST', 'request body is not JSON');
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new ControlError('E_CONTROL_BAD_REQUEST', 'request body must be a JSON object');
  return body as Record<string, unknown>;
}

function optionalField(body: Record<string, unknown>, name: string): string | undefined {
  const v = body[name];
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || v === '') throw new ControlError('E_CONTROL_BAD_REQUEST', `"${name}" must be a non-empty string`);
  return v;
}

function field(body: Record<string, unknown>, name: string): string {
  const v = optionalField(body, name);
  if (v === undefined) throw new ControlError('E_CONTROL_BAD_REQUEST', `"${name}" is required`);
  return v;
}
