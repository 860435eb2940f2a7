import { timingSafeEqual, createHash } from 'node:crypto';
import { lstat, readFile, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { SupernodeConfigError } from './errors.js';

/** Shorter tokens are guessable; 16 characters of a random token is ~96 bits. */
const MIN_TOKEN_LENGTH = 16;

/**
 * The bearer tokens in a token file: one per line, blank lines and `#` comments ignored.
 * Like ssh keys, the file must not be readable by group or others. One exception: a systemd
 * credential (LoadCredential=, the file directly in `$CREDENTIALS_DIRECTORY`) is made mode 0400
 * by systemd and, for a service with its own User=, given to that user with a POSIX ACL entry
 * where the file system has ACLs (tmpfs, systemd 254 and later); `stat` then shows the ACL's
 * mask in the group bits (0440) although no group can read it. There group read is allowed,
 * nothing else.
 */
export async function readTokenFile(path: string, env: NodeJS.ProcessEnv = process.env): Promise<string[]> {
  let mode: number;
  let text: string;
  try {
    mode = (await stat(path)).mode;
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new SupernodeConfigError(`cannot read token file ${path}: ${(e as Error).message}`);
  }
  const allowed = (await isSystemdCredential(path, env)) ? 0o040 : 0;
  if (mode & 0o077 & ~allowed) throw new SupernodeConfigError(`token file ${path} is readable by others (mode ${(mode & 0o777).toString(8)}); chmod 600 it`);
  const tokens = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  if (tokens.length === 0) throw new SupernodeConfigError(`token file ${path} holds no token`);
  const short = tokens.find((t) => t.length < MIN_TOKEN_LENGTH || /\s/.test(t));
  if (short !== undefined) throw new SupernodeConfigError(`token file ${path}: tokens must be at least ${MIN_TOKEN_LENGTH} characters without spaces`);
  return tokens;
}

async function isSystemdCredential(path: string, env: NodeJS.ProcessEnv): Promise<boolean> {
  const dir = env.CREDENTIALS_DIRECTORY;
  if (!dir || dirname(resolve(path)) !== resolve(dir)) return false;
  return (await lstat(path)).isFile();
}

/** Checks `Authorization: Bearer <token>` against the accepted tokens in constant time per token. */
export class TokenCheck {
  private readonly digests: Buffer[];

  constructor(tokens: readonly string[]) {
    // Comparing fixed-length digests keeps the token's length out of the timing too.
    this.digests = tokens.map(digestOf);
  }

  accepts(authorization: string | undefined): boolean {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '');
    if (!m) return false;
    const given = digestOf(m[1]!);
    let ok = false;
    for (const d of this.digests) ok = timingSafeEqual(d, given) || ok;
    return ok;
  }
}

function digestOf(token: string): Buffer {
  return createHash('sha256').update(token).digest();
}
