import { randomUUID, sign } from 'node:crypto';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface CertFiles {
  certFile: string;
  keyFile: string;
}

/** A self-signed RSA certificate for 127.0.0.1/localhost, made with openssl, valid as its own root. */
export async function makeSelfSignedCert(dir: string, name = 'lazybd-test'): Promise<CertFiles> {
  const certFile = join(dir, `${name}.crt`);
  const keyFile = join(dir, `${name}.key`);
  await run('openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-sha256', '-days', '2',
    '-keyout', keyFile, '-out', certFile, '-subj', `/CN=${name}`,
    '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
  ]);
  return { certFile, keyFile };
}

export interface TokenServerOptions {
  /** Signing key and certificate; the registry's `rootcertbundle` must hold the certificate. */
  cert: CertFiles;
  issuer?: string;
  service?: string;
  /** user → password accepted over basic auth; they get every action they ask for. */
  users?: Record<string, string>;
  /** What a request without credentials is granted. Default: pull. */
  anonymous?: 'pull' | 'nothing';
  lifetime?: Partial<TokenLifetime>;
}

export interface TokenLifetime {
  /** `expires_in` told to the client. Default 60 s. */
  expiresInS: number;
  /**
   * How long the registry will accept the token. distribution 2.8 allows 60 s of
   * clock leeway past `exp`, so `exp` is set that much earlier. Default: `expiresInS`.
   */
  acceptedForS: number;
}

export interface TokenRequestLog {
  user: string | undefined;
  scopes: string[];
}

export interface TokenServer {
  /** The token endpoint, for the registry's `auth.token.realm`. */
  realm: string;
  issuer: string;
  service: string;
  /** Applies to tokens issued from now on; tests change it between steps. */
  lifetime: TokenLifetime;
  /** Every token request answered with a token, in order. */
  requests: TokenRequestLog[];
  stop(): Promise<void>;
}

const REGISTRY_LEEWAY_S = 60;

/**
 * An in-process token endpoint per the distribution token-auth spec: checks basic
 * credentials, grants scopes, and returns RS256 JWTs whose `x5c` header carries
 * the certificate, which the registry verifies against its `rootcertbundle`.
 */
export async function startTokenServer(options: TokenServerOptions): Promise<TokenServer> {
  const issuer = options.issuer ?? 'lazybd-test-issuer';
  const service = options.service ?? 'lazybd-test-registry';
  const key = await readFile(options.cert.keyFile, 'utf8');
  const pem = await readFile(options.cert.certFile, 'utf8');
  const der = pem.replace(/-----[^-]+-----|\s/g, '');
  const expiresInS = options.lifetime?.expiresInS ?? 60;
  const lifetime: TokenLifetime = { expiresInS, acceptedForS: options.lifetime?.acceptedForS ?? expiresInS };
  const requests: TokenRequestLog[] = [];

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://token');
    const reply = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (url.pathname !== '/token') return reply(404, { error: 'not found' });
    if (url.searchParams.get('service') !== service) return reply(400, { error: 'unknown service' });

    let user: string | undefined;
    const auth = req.headers.authorization;
    if (auth) {
      const [scheme, b64] = auth.split(' ');
      const [name, ...rest] = Buffer.from(b64 ?? '', 'base64').toString().split(':');
      if (scheme !== 'Basic' || !name || options.users?.[name] !== rest.join(':')) {
        res.setHeader('www-authenticate', 'Basic realm="lazybd-test-token"');
        return reply(401, { errors: [{ code: 'UNAUTHORIZED', message: 'bad credentials' }] });
      }
      user = name;
    }

    const scopes = url.searchParams.getAll('scope').flatMap((s) => s.split(' ')).filter(Boolean);
    const access = scopes.flatMap((scope) => {
      const [type, name, actions] = scope.split(':');
      if (type !== 'repository' || !name || !actions) return [];
      const wanted = actions.split(',');
      const granted = user !== undefined ? wanted : options.anonymous === 'nothing' ? [] : wanted.filter((a) => a === 'pull');
      return granted.length ? [{ type, name, actions: granted }] : [];
    });

    const now = Math.floor(Date.now() / 1000);
    const header = { typ: 'JWT', alg: 'RS256', x5c: [der] };
    const claims = { iss: issuer, sub: user ?? '', aud: service, exp: now + lifetime.acceptedForS - REGISTRY_LEEWAY_S, nbf: now - 1, iat: now, jti: randomUUID(), access };
    const signingInput = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    const signature = sign('sha256', Buffer.from(signingInput), key).toString('base64url');
    requests.push({ user, scopes });
    reply(200, { token: `${signingInput}.${signature}`, expires_in: lifetime.expiresInS, issued_at: new Date(now * 1000).toISOString() });
  };

  const server = createServer(handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    realm: `http://127.0.0.1:${port}/token`,
    issuer,
    service,
    lifetime,
    requests,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function b64url(s: string): string {
  return Buffer.from(s).toString('base64url');
}
