import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { AuthFileError } from './errors.js';

export interface Credentials {
  username: string;
  password: string;
}

/**
 * The auth files docker and podman write on `login`, in the order
 * containers/image reads them. `$REGISTRY_AUTH_FILE` replaces the per-user
 * podman files when set, as it does for podman.
 */
export function authFilePaths(env: NodeJS.ProcessEnv = process.env, home: string = homedir()): string[] {
  const podman = env.REGISTRY_AUTH_FILE
    ? [env.REGISTRY_AUTH_FILE]
    : [...(env.XDG_RUNTIME_DIR ? [join(env.XDG_RUNTIME_DIR, 'containers', 'auth.json')] : []), join(home, '.config', 'containers', 'auth.json')];
  return [...podman, join(env.DOCKER_CONFIG ?? join(home, '.docker'), 'config.json')];
}

interface AuthEntry {
  auth?: string;
  username?: string;
  password?: string;
}

/**
 * Credentials for `registry` (`host[:port]`), optionally for one `repository`:
 * podman allows entries keyed `host/namespace`, and the most specific key wins.
 * The first file with a matching entry decides. Credential helpers (`credHelpers`,
 * `credsStore`) are not consulted.
 */
export async function findCredentials(registry: string, repository?: string, paths: string[] = authFilePaths()): Promise<Credentials | undefined> {
  for (const path of paths) {
    const auths = await readAuths(path);
    if (!auths) continue;
    const entry = bestEntry(auths, registry, repository);
    if (entry) return decodeEntry(entry, path);
  }
  return undefined;
}

async function readAuths(path: string): Promise<Record<string, AuthEntry> | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
    throw e;
  }
  try {
    return (JSON.parse(text) as { auths?: Record<string, AuthEntry> }).auths;
  } catch (e) {
    throw new AuthFileError(path, 'not valid JSON', e);
  }
}

/** Keys may carry a scheme or a path (`https://index.docker.io/v1/`); compare host[/path] only. */
function normalizeKey(key: string): string {
  return key.replace(/^[a-z]+:\/\//, '').replace(/\/+$/, '').replace(/\/v[12]$/, '');
}

function bestEntry(auths: Record<string, AuthEntry>, registry: string, repository?: string): AuthEntry | undefined {
  const wanted = repository ? `${registry}/${repository}` : registry;
  let best: { entry: AuthEntry; length: number } | undefined;
  for (const [key, entry] of Object.entries(auths)) {
    const k = normalizeKey(key);
    const matches = k === wanted || k === registry || wanted.startsWith(`${k}/`);
    if (matches && (!best || k.length > best.length)) best = { entry, length: k.length };
  }
  return best?.entry;
}

function decodeEntry(entry: AuthEntry, path: string): Credentials | undefined {
  if (entry.auth) {
    const plain = Buffer.from(entry.auth, 'base64').toString('utf8');
    const colon = plain.indexOf(':');
    if (colon < 0) throw new AuthFileError(path, '"auth" is not base64 of user:password');
    return { username: plain.slice(0, colon), password: plain.slice(colon + 1) };
  }
  if (entry.username !== undefined && entry.password !== undefined) return { username: entry.username, password: entry.password };
  return undefined;
}
