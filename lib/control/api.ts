/*
 * The daemon's control API (HTTP+JSON on an owner-only unix socket), version 1: every path,
 * request and response body is declared here, for the server, the client and the tests.
 * Errors are `{ error: { code, message, exitStatus } }` with an HTTP status from `httpStatusOf`.
 */

export const API_PREFIX = '/v1';

export const paths = {
  status: `${API_PREFIX}/status`,
  exports: `${API_PREFIX}/exports`,
  export: (name: string) => `${API_PREFIX}/exports/${encodeURIComponent(name)}`,
  clones: `${API_PREFIX}/clones`,
  clone: (name: string) => `${API_PREFIX}/clones/${encodeURIComponent(name)}`,
  cloneCommit: (name: string) => `${API_PREFIX}/clones/${encodeURIComponent(name)}/commit`,
} as const;

export interface ExportStatus {
  export: string;
  /** `image`: named on the command line or added with `exports add`; `clone`: an export with its own upper, kept across restarts. */
  kind: 'image' | 'clone';
  ref: string;
  manifestDigest: string;
  uri: string;
  writable: boolean;
  /** NBD clients past the handshake. */
  clients: number;
  bytesLocal: number;
  bytesTotal: number;
  sources: string[];
  prefetch: { state: 'off' | 'running' | 'done' | 'failed'; rateBytesPerSec: number };
  /** With P2P: connected peers offering chunks of the image's layers. */
  peers?: number;
  /** Clones: the upper directory. */
  upperDir?: string;
}

export interface DaemonStatus {
  pid: number;
  startedAt: string;
  control: string;
  /** The image store it serves from (absolute): a `lazybd rm` in another store is none of its business. */
  store: string;
  exports: ExportStatus[];
}

/** POST exports: serve another image (read-only unless `upper` is given). */
export interface AddExportRequest {
  /** name:tag or a registry ref (pulled lazily, as serve does). */
  image: string;
  /** Export name; default the store ref. */
  name?: string;
}

/** POST clones: a new export over `image` with a fresh upper. */
export interface AddCloneRequest {
  image: string;
  name: string;
}

/** DELETE clones/NAME?force=1&keep=1: force drops connected clients; keep leaves the upper on disk. */
export interface RemoveOptions {
  force?: boolean;
  keep?: boolean;
}

/** POST clones/NAME/commit: the clone's upper becomes a new image (the clone stays, unchanged). */
export interface CommitCloneRequest {
  ref: string;
  /** none, lz4, zstd or zstd:LEVEL; default zstd at its default level. */
  compress?: string;
}

export interface CommitCloneResponse {
  ref: string;
  base: string;
  manifest: string;
  layer: string;
  layerSize: number;
  extents: number;
  dataBytes: number;
}

export interface RemovedResponse {
  removed: string;
  /** Where the clone's upper stays (`keep`). */
  keptUpper?: string;
}

export interface ErrorBody {
  error: { code: string; message: string; exitStatus: number };
}

/** Exit status 2 is the CLI's "usage / not found / in use"; the rest are the daemon's or the input's fault. */
export function httpStatusOf(code: string, exitStatus: number): number {
  if (/NOT_FOUND|UNKNOWN/.test(code)) return 404;
  if (/IN_USE|EXISTS|BUSY/.test(code)) return 409;
  if (code === 'E_CONTROL_BAD_REQUEST' || exitStatus === 2 || exitStatus === 3) return 400;
  return 500;
}
