import type { Readable } from 'node:stream';
import type { Agent, Dispatcher } from 'undici';
import { undici } from '../lazy-undici.js';
import { findCredentials, type Credentials } from './auth-file.js';
import { Authorizer, type Scope, type TokenGrant } from './authorizer.js';
import { DeniedError, RegistryProtocolError, UnauthorizedError } from './errors.js';
import { responseError, transportError, type Subject } from './response-errors.js';

export interface Timeouts {
  /** TCP + TLS handshake. */
  connectMs: number;
  /** From sending the request to the response headers. */
  headersMs: number;
  /** Longest pause between two pieces of a response body (not the whole body). */
  bodyMs: number;
}

export interface TransportOptions {
  /** `host[:port]` of the registry. */
  registry: string;
  /** Speak http instead of https. */
  plainHttp?: boolean;
  /** Extra CA certificate(s), PEM, trusted for https (registry, token realm and redirect targets). */
  ca?: string | Buffer;
  /** Accept any TLS certificate. For tests only. */
  insecureSkipVerify?: boolean;
  /** Explicit credentials; without them the docker/podman auth files are read (see `authFiles`). */
  credentials?: Credentials;
  /** Look credentials up in the docker/podman auth files when none are given. Default true. */
  authFiles?: boolean;
  timeouts?: Partial<Timeouts>;
  /** Keep-alive connections per origin. Range reads for lazy loading run this many at once. */
  connections?: number;
  userAgent?: string;
  /**
   * Sent as `Authorization` on every request to the registry's own origin, instead of
   * answering challenges: the supernode's bearer token.
   */
  authorization?: string;
  /** Query parameters added to every request to the registry's own origin (a mirror's `ns`). */
  query?: Record<string, string>;
}

/** Whether the environment names an HTTP(S) proxy: requests then go through undici's proxy agent, which honours NO_PROXY. */
function proxyConfigured(): boolean {
  return ['HTTPS_PROXY', 'https_proxy', 'HTTP_PROXY', 'http_proxy'].some((v) => process.env[v]);
}

export const DEFAULT_TIMEOUTS: Timeouts = { connectMs: 10_000, headersMs: 30_000, bodyMs: 30_000 };

export type Method = 'GET' | 'HEAD' | 'PUT' | 'POST' | 'PATCH' | 'DELETE';

export interface RegistryRequest {
  method: Method;
  /** A path on the registry (`/v2/…`) or an absolute URL taken from a Location header. */
  url: string | URL;
  /** Token scopes the request needs. */
  scopes: Scope[];
  headers?: Record<string, string>;
  /** A stream cannot be sent twice: a 401 on it fails (retryably) after renewing the token for the next try. */
  body?: Buffer | Readable;
  /** Aborting rejects with the signal's reason, as it is: the caller asked for it. */
  signal?: AbortSignal;
  /** Statuses the caller handles; any other becomes a coded error. */
  expect: number[];
  subject: Subject;
  /** For messages: `GET manifest app:v1`. */
  what: string;
}

export interface RegistryResponse extends Dispatcher.ResponseData {
  /** The URL that answered, after redirects. */
  url: URL;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 5;

/**
 * HTTP to one registry: a keep-alive connection pool, authentication with one
 * retry after a 401, redirects for reads (credentials stay with the registry's
 * own origin), and coded errors for everything that goes wrong.
 */
export class HttpTransport {
  readonly base: URL;
  private readonly agentOptions: Agent.Options;
  /** Made on the first request (undici loads then). */
  private agent: Promise<Dispatcher> | undefined;
  private readonly authorizer: Authorizer;
  private readonly userAgent: string;

  constructor(readonly options: TransportOptions) {
    this.base = new URL(`${options.plainHttp ? 'http' : 'https'}://${options.registry}`);
    const timeouts = { ...DEFAULT_TIMEOUTS, ...options.timeouts };
    this.agentOptions = {
      connections: options.connections ?? 16,
      headersTimeout: timeouts.headersMs,
      bodyTimeout: timeouts.bodyMs,
      connect: {
        timeout: timeouts.connectMs,
        ...(options.ca === undefined ? {} : { ca: options.ca }),
        rejectUnauthorized: !options.insecureSkipVerify,
      },
    };
    this.userAgent = options.userAgent ?? 'lazybd';
    this.authorizer = new Authorizer({
      credentials: async () => options.credentials ?? (options.authFiles === false ? undefined : findCredentials(options.registry)),
      requestToken: (url, authorization) => this.requestToken(url, authorization),
    });
  }

  async send(req: RegistryRequest): Promise<RegistryResponse> {
    let url = new URL(req.url, this.base);
    let retriedAuth = false;
    for (let hops = 0; ; ) {
      const own = url.origin === this.base.origin;
      if (own) for (const [k, v] of Object.entries(this.options.query ?? {})) url.searchParams.set(k, v);
      const authorization = own ? (this.options.authorization ?? (await this.authorizer.header(req.scopes))) : undefined;
      const res = await this.dispatch(url, req, authorization);

      if (res.statusCode === 401 && own && this.options.authorization === undefined) {
        const challenge = res.headers['www-authenticate'];
        const header = Array.isArray(challenge) ? challenge.join(', ') : challenge;
        if (retriedAuth || !(await this.authorizer.challenged(header, req.scopes, authorization))) {
          throw await this.authFailure(res, req, header);
        }
        await res.body.dump();
        if (req.body !== undefined && !Buffer.isBuffer(req.body)) {
          throw new UnauthorizedError(`${req.what}: registry asked to authenticate again while a stream was being sent`, { status: 401, retryable: true });
        }
        retriedAuth = true;
        continue;
      }

      const location = res.headers.location;
      if (REDIRECTS.has(res.statusCode) && typeof location === 'string' && (req.method === 'GET' || req.method === 'HEAD')) {
        await res.body.dump();
        if (++hops > MAX_REDIRECTS) throw new RegistryProtocolError(`${req.what}: more than ${MAX_REDIRECTS} redirects`, { status: res.statusCode });
        url = new URL(location, url);
        continue;
      }

      if (!req.expect.includes(res.statusCode)) throw await responseError(res, req.subject, req.what);
      return Object.assign(res, { url });
    }
  }

  /** Closes the pooled connections. */
  async close(): Promise<void> {
    if (this.agent) await (await this.agent).close();
  }

  private dispatcher(): Promise<Dispatcher> {
    return (this.agent ??= undici().then((u) => (proxyConfigured() ? new u.EnvHttpProxyAgent(this.agentOptions) : new u.Agent(this.agentOptions))));
  }

  private async dispatch(url: URL, req: RegistryRequest, authorization: string | undefined): Promise<Dispatcher.ResponseData> {
    const headers: Record<string, string> = { 'user-agent': this.userAgent, ...req.headers };
    if (authorization !== undefined) headers.authorization = authorization;
    try {
      return await (await this.dispatcher()).request({ origin: url.origin, path: url.pathname + url.search, method: req.method, headers, body: req.body ?? null, signal: req.signal });
    } catch (e) {
      throw transportError(e, req.what);
    }
  }

  /** A 401 that authenticating again cannot fix. A token that lacks the scope is a denial, not a login problem. */
  private async authFailure(res: Dispatcher.ResponseData, req: RegistryRequest, challenge: string | undefined): Promise<Error> {
    const err = await responseError(res, req.subject, req.what);
    if (challenge && /error="?insufficient_scope/.test(challenge)) {
      return new DeniedError(`${req.what}: token does not grant ${req.scopes.join(' ')}`, { status: 401, registryCodes: err.registryCodes });
    }
    return err;
  }

  private async requestToken(url: URL, authorization: string | undefined): Promise<TokenGrant> {
    const what = `GET token from ${url.origin}${url.pathname}`;
    const headers: Record<string, string> = { 'user-agent': this.userAgent, accept: 'application/json' };
    if (authorization !== undefined) headers.authorization = authorization;
    let res: Dispatcher.ResponseData;
    try {
      res = await (await this.dispatcher()).request({ origin: url.origin, path: url.pathname + url.search, method: 'GET', headers });
    } catch (e) {
      throw transportError(e, what);
    }
    if (res.statusCode !== 200) throw await responseError(res, 'token', what);
    let body: { token?: unknown; access_token?: unknown; expires_in?: unknown };
    try {
      body = (await res.body.json()) as typeof body;
    } catch (e) {
      throw e instanceof SyntaxError ? new RegistryProtocolError(`${what}: response is not JSON`) : transportError(e, what);
    }
    const token = typeof body.token === 'string' && body.token ? body.token : body.access_token;
    if (typeof token !== 'string' || !token) throw new RegistryProtocolError(`${what}: response has no token`);
    // The auth spec's default when expires_in is absent.
    const expiresIn = typeof body.expires_in === 'number' && body.expires_in > 0 ? body.expires_in : 60;
    return { token, expiresInMs: expiresIn * 1000 };
  }
}
