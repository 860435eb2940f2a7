import type { Client } from 'undici';
import { undici } from '../lazy-undici.js';
import { LazybdError } from '../errors.js';
import {
  paths,
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

/** The CLI's side of the control API: one method per route, daemon errors rethrown with their own code. */
export class ControlClient {
  /** Made on the first call (undici loads then). */
  private client: Promise<Client> | undefined;

  constructor(readonly socketPath: string) {}

  status(): Promise<DaemonStatus> {
    return this.call('GET', paths.status);
  }

  addExport(request: AddExportRequest): Promise<ExportStatus> {
    return this.call('POST', paths.exports, request);
  }

  removeExport(name: string, options: RemoveOptions = {}): Promise<RemovedResponse> {
    return this.call('DELETE', withFlags(paths.export(name), options));
  }

  clones(): Promise<ExportStatus[]> {
    return this.call('GET', paths.clones);
  }

  addClone(request: AddCloneRequest): Promise<ExportStatus> {
    return this.call('POST', paths.clones, request);
  }

  removeClone(name: string, options: RemoveOptions = {}): Promise<RemovedResponse> {
    return this.call('DELETE', withFlags(paths.clone(name), options));
  }

  commitClone(name: string, request: CommitCloneRequest): Promise<CommitCloneResponse> {
    return this.call('POST', paths.cloneCommit(name), request);
  }

  async close(): Promise<void> {
    if (this.client) await (await this.client).close();
  }

  private async call<T>(method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown): Promise<T> {
    let res;
    try {
      this.client ??= undici().then((u) => new u.Client('http://lazybd', { socketPath: this.socketPath, connectTimeout: 5_000 }));
      res = await (await this.client).request({ method, path, body: body === undefined ? undefined : JSON.stringify(body), headers: body === undefined ? {} : { 'content-type': 'application/json' } });
    } catch (e) {
      throw new ControlError('E_DAEMON_UNREACHABLE', `no lazybd daemon answers on ${this.socketPath}: ${(e as Error).message}`, { cause: e });
    }
    const text = await res.body.text();
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new ControlError('E_CONTROL_PROTOCOL', `${this.socketPath} answered ${method} ${path} with something other than JSON`, { exitStatus: 1 });
    }
    if (res.statusCode >= 400) {
      const { error } = parsed as ErrorBody;
      throw new LazybdError(error?.code ?? 'E_CONTROL_PROTOCOL', error?.message ?? `HTTP ${res.statusCode}`, { exitStatus: error?.exitStatus ?? 1 });
    }
    return parsed as T;
  }
}

function withFlags(path: string, options: RemoveOptions): string {
  const q = new URLSearchParams();
  if (options.force) q.set('force', '1');
  if (options.keep) q.set('keep', '1');
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}
