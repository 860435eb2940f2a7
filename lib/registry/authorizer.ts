import type { Credentials } from './auth-file.js';
import { parseChallenges } from './challenge.js';
import { RegistryProtocolError } from './errors.js';

/** A token-auth scope, `repository:<name>:<actions>` (distribution auth spec). */
export type Scope = string;

export function repositoryScope(repository: string, actions: 'pull' | 'pull,push'): Scope {
  return `repository:${repository}:${actions}`;
}

export interface TokenGrant {
  token: string;
  /** How long the token server says the token lives. */
  expiresInMs: number;
}

/** GETs a token realm URL (with `authorization` when there are credentials) and returns the grant. */
export type TokenRequester = (url: URL, authorization: string | undefined) => Promise<TokenGrant>;

interface CachedToken {
  promise: Promise<string>;
  /** The header value once the fetch has settled. */
  header?: string;
  /** When to stop handing this token out and fetch a fresh one (ms since epoch). */
  refreshAt: number;
}

export interface AuthorizerOptions {
  /** Resolved once, on the first challenge that needs them. */
  credentials: () => Promise<Credentials | undefined>;
  requestToken: TokenRequester;
  now?: () => number;
}

/**
 * The authentication state for one registry host: which scheme it asked for and,
 * for bearer auth, one cached token per scope set. Requests ask `header(scopes)`
 * before sending and report a 401 to `challenged(...)`; nothing is sent until the
 * registry has asked, so anonymous registries cost no extra round trip.
 */
export class Authorizer {
  private scheme: 'basic' | 'bearer' | undefined;
  private realm: URL | undefined;
  private service: string | undefined;
  private readonly tokens = new Map<string, CachedToken>();
  /** Scopes a challenge asked for beyond the ones we sent (cross-repository mount asks for the source repo too). */
  private readonly demanded = new Map<string, Scope[]>();
  private credentialsOnce: Promise<Credentials | undefined> | undefined;
  private readonly now: () => number;

  constructor(private readonly options: AuthorizerOptions) {
    this.now = options.now ?? Date.now;
  }

  /** The `Authorization` value for a request needing `scopes`, or undefined while the registry has not asked for one. */
  async header(scopes: Scope[]): Promise<string | undefined> {
    if (this.scheme === 'basic') {
      const creds = await this.credentials();
      return creds && basicAuthorization(creds);
    }
    if (this.scheme === 'bearer') return this.token(scopes);
    return undefined;
  }

  /**
   * Learns from a 401 answer to a request that carried `sent`. Returns true when
   * sending it again with a fresh `header(scopes)` may succeed.
   */
  async challenged(wwwAuthenticate: string | undefined, scopes: Scope[], sent: string | undefined): Promise<boolean> {
    const challenges = parseChallenges(wwwAuthenticate ?? '');
    const bearer = challenges.find((c) => c.scheme === 'bearer' && c.params.realm);
    if (bearer) {
      try {
        this.realm = new URL(bearer.params.realm!);
      } catch {
        throw new RegistryProtocolError(`bearer challenge has an unusable realm ${JSON.stringify(bearer.params.realm)}`, { status: 401 });
      }
      this.scheme = 'bearer';
      this.service = bearer.params.service;
      const key = scopeKey(scopes);
      const extra = (bearer.params.scope ?? '').split(' ').filter((s) => s && !scopes.includes(s));
      if (extra.length) this.demanded.set(key, extra);
      // Drop the token the registry refused (expired or revoked); one fetched meanwhile by a concurrent request stays.
      if (sent !== undefined && this.tokens.get(key)?.header === sent) this.tokens.delete(key);
      return true;
    }
    if (challenges.some((c) => c.scheme === 'basic')) {
      this.scheme = 'basic';
      return sent === undefined && (await this.credentials()) !== undefined;
    }
    return false;
  }

  private credentials(): Promise<Credentials | undefined> {
    this.credentialsOnce ??= this.options.credentials();
    return this.credentialsOnce;
  }

  private token(scopes: Scope[]): Promise<string> {
    const key = scopeKey(scopes);
    const cached = this.tokens.get(key);
    // A pending fetch is shared: a burst of concurrent range reads costs one token request.
    if (cached && (cached.header === undefined || this.now() < cached.refreshAt)) return cached.promise;

    const started = this.now();
    const promise = this.fetchToken([...scopes, ...(this.demanded.get(key) ?? [])]).then((grant) => {
      entry.header = `Bearer ${grant.token}`;
      // Renew once 90% of the lifetime has passed (at most 30 s early), so requests never carry a token about to lapse.
      entry.refreshAt = started + grant.expiresInMs - Math.min(grant.expiresInMs / 10, 30_000);
      return entry.header;
    });
    const entry: CachedToken = { promise, refreshAt: Infinity };
    this.tokens.set(key, entry);
    promise.catch(() => {
      if (this.tokens.get(key) === entry) this.tokens.delete(key);
    });
    return promise;
  }

  private async fetchToken(scopes: Scope[]): Promise<TokenGrant> {
    const url = new URL(this.realm!);
    if (this.service !== undefined) url.searchParams.set('service', this.service);
    for (const s of scopes) url.searchParams.append('scope', s);
    const creds = await this.credentials();
    return this.options.requestToken(url, creds && basicAuthorization(creds));
  }
}

function scopeKey(scopes: Scope[]): string {
  return scopes.join(' ');
}

function basicAuthorization(c: Credentials): string {
  return `Basic ${Buffer.from(`${c.username}:${c.password}`).toString('base64')}`;
}
