import { timingSafeEqual, createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { SupernodeConfigError } from './errors.js';

/** Shorter tokens are guessable; 16 characters of a random token is ~96 bits. */
const MIN_TOKEN_LENGTH = 16;

/**
 * The bearer tokens in a token file: one per line, blank lines and `#` comments ignored.
 * Like ssh keys, the file must not be readable by group or others.
 */
export async function readTokenFile(path: string): Promise<string[]> {
  let mode: number;
  let text: string;
  try {
    mode = (await stat(path)).mode;
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new SupernodeConfigError(`cannot read token file ${path}: ${(e as Error).message}`);
  }
  if (mode & 0o077) throw new SupernodeConfigError(`token file ${path} is readable by others (mode ${(mode & 0o777).toString(8)}); chmod 600 it`);
  const tokens = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  if (tokens.length === 0) throw new SupernodeConfigError(`token file ${path} holds no token`);
  const short = tokens.find((t) => t.length < MIN_TOKEN_LENGTH || /\s/.test(t));
  if (short !== undefined) throw new SupernodeConfigError(`token file ${path}: tokens must be at least ${MIN_TOKEN_LENGTH} characters without spaces`);
  return tokens;
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
