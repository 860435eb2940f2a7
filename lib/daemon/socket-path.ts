import { connect } from 'node:net';
import { mkdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { LazybdError } from '../errors.js';

/** Default unix socket: per-user runtime dir when there is one, else the temp dir. */
export function defaultSocketPath(exportName: string, env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_RUNTIME_DIR || tmpdir();
  return join(base, 'lazybd', `${exportName.replace(/[^A-Za-z0-9._-]/g, '_')}.sock`);
}

/**
 * Makes `path` bindable: creates its directory and removes a socket file left by a
 * daemon that died, but refuses to take over one a live daemon still answers on.
 */
export async function claimSocketPath(path: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const live = await new Promise<boolean>((resolve) => {
    const s = connect(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
  if (live) throw new LazybdError('E_SOCKET_IN_USE', `another server is listening on ${path}`, { exitStatus: 2 });
  await rm(path, { force: true });
}

/** The NBD URI (doc/uri.md) a client uses to reach an export. */
export function nbdUri(exportName: string, where: { path: string } | { host: string; port: number }, tls = false): string {
  const scheme = tls ? 'nbds' : 'nbd';
  const name = encodeURIComponent(exportName).replace(/%3A/gi, ':');
  if ('path' in where) return `${scheme}+unix:///${name}?socket=${encodeURIComponent(where.path).replace(/%2F/gi, '/')}`;
  const host = where.host.includes(':') ? `[${where.host}]` : where.host;
  return `${scheme}://${host}:${where.port}/${name}`;
}
