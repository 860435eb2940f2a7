import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Agent, request } from 'undici';
import { spawnOwned, waitFor, type Owned } from './processes.js';
import type { CertFiles, TokenServer } from './token-server.js';

const run = promisify(execFile);

export type RegistryAuth =
  | { kind: 'none' }
  | { kind: 'htpasswd'; users: Record<string, string> }
  | { kind: 'token'; tokenServer: TokenServer; certFile: string };

export interface RegistryServerOptions {
  auth?: RegistryAuth;
  /** Serve https with this certificate instead of http. */
  tls?: CertFiles;
}

export interface RegistryServer {
  /** `127.0.0.1:<port>`, the registry part of an image reference. */
  host: string;
  /** Where the registry keeps its blobs and repositories. */
  storageDir: string;
  process: Owned;
  stop(): Promise<void>;
}

/**
 * The real CNCF distribution registry (`docker-registry`, 2.8) on a free
 * loopback port with its own temporary storage; resolves once `/v2/` answers.
 */
export async function startRegistry(options: RegistryServerOptions = {}): Promise<RegistryServer> {
  // freePort() closes its socket before docker-registry binds the port, and in that gap
  // anything else on the machine (another suite's outgoing connection) may take it.
  // Only that lost race is tried again, on a fresh port; every other failure throws.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startRegistryOnce(options);
    } catch (e) {
      if (!(e instanceof PortTakenError) || attempt === 5) throw e;
    }
  }
}

class PortTakenError extends Error {}

async function startRegistryOnce(options: RegistryServerOptions): Promise<RegistryServer> {
  const dir = await mkdtemp(join(tmpdir(), 'lazybd-registry-'));
  try {
    const port = await freePort();
    const storageDir = join(dir, 'storage');
    // Every answer carries this, so a /v2/ answer from whatever else took the port is not ours.
    const nonce = randomBytes(8).toString('hex');
    const config = registryConfig({
      addr: `127.0.0.1:${port}`,
      storageDir,
      http: ['  headers:', `    X-Lazybd-Test-Registry: [${nonce}]`, ...(options.tls ? ['  tls:', `    certificate: ${options.tls.certFile}`, `    key: ${options.tls.keyFile}`] : [])],
      sections: await authConfig(options.auth ?? { kind: 'none' }, dir),
    });
    const configFile = join(dir, 'config.yml');
    await writeFile(configFile, config);

    const proc = spawnOwned('docker-registry', ['serve', configFile], { env: registryEnv() });
    const host = `127.0.0.1:${port}`;
    const agent = new Agent({ connect: { rejectUnauthorized: false } });
    const stop = async () => {
      await proc.stop();
      await agent.close();
      await rm(dir, { recursive: true, force: true });
    };
    try {
      await waitFor(
        async () => {
          if (proc.child.exitCode !== null) {
            const Failure = /bind: address already in use/.test(proc.output()) ? PortTakenError : Error;
            throw new Failure(`docker-registry exited early:\n${proc.output()}`);
          }
          const res = await request(`${options.tls ? 'https' : 'http'}://${host}/v2/`, { dispatcher: agent }).catch(() => undefined);
          await res?.body.dump();
          return res !== undefined && (res.statusCode === 200 || res.statusCode === 401) && res.headers['x-lazybd-test-registry'] === nonce;
        },
        10_000,
        'docker-registry to answer /v2/',
      );
    } catch (e) {
      await stop();
      throw e;
    }
    return { host, storageDir, process: proc, stop };
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
}

/**
 * The environment to start docker-registry in: it reads REGISTRY_<SECTION>_<KEY> variables as
 * config overrides, so a user's REGISTRY_AUTH_FILE (the podman auth file) would become
 * `auth: file:` and break it.
 */
export function registryEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('REGISTRY_')));
}

/**
 * A docker-registry config: filesystem storage, warnings only, no access log. `http` adds
 * lines under `http:` (tls), `sections` top-level sections (auth, a pull-through `proxy:`).
 */
export function registryConfig(o: { addr: string; storageDir: string; http?: string[]; sections?: string[] }): string {
  return [
    'version: 0.1',
    'log:',
    '  level: warn',
    '  accesslog:',
    '    disabled: true',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${o.storageDir}`,
    '  delete:',
    '    enabled: true',
    'http:',
    `  addr: ${o.addr}`,
    '  secret: lazybd-test-secret',
    ...(o.http ?? []),
    ...(o.sections ?? []),
    '',
  ].join('\n');
}

async function authConfig(auth: RegistryAuth, dir: string): Promise<string[]> {
  switch (auth.kind) {
    case 'none':
      return [];
    case 'htpasswd': {
      const lines = await Promise.all(Object.entries(auth.users).map(async ([user, pass]) => (await run('htpasswd', ['-Bbn', user, pass])).stdout.trim()));
      const file = join(dir, 'htpasswd');
      await writeFile(file, `${lines.join('\n')}\n`);
      return ['auth:', '  htpasswd:', '    realm: lazybd-test', `    path: ${file}`];
    }
    case 'token':
      return [
        'auth:',
        '  token:',
        `    realm: ${auth.tokenServer.realm}`,
        `    service: ${auth.tokenServer.service}`,
        `    issuer: ${auth.tokenServer.issuer}`,
        `    rootcertbundle: ${auth.certFile}`,
      ];
  }
}

/** A port nothing listens on right now (the kernel's pick for port 0). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}
