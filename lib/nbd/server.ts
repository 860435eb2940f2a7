import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import { createSecureContext, type SecureContext } from 'node:tls';
import { NbdConnection } from './connection.js';
import { NbdServerError } from './errors.js';
import { ExportRegistry, type NbdExport } from './export-registry.js';
import { DEFAULT_CONNECTION_BUFFER, DEFAULT_HANDSHAKE_TIMEOUT_MS } from './limits.js';
import { stderrLogger, type NbdLogger } from './logger.js';
import { widenSendBuffer } from './send-buffer.js';

export type { NbdExport } from './export-registry.js';

export interface NbdTlsOptions {
  /** PEM certificate (chain) and private key. */
  cert: string | Buffer;
  key: string | Buffer;
  /** 'required' (default): nothing but STARTTLS is answered before TLS. 'optional': plaintext clients are served too. */
  mode?: 'required' | 'optional';
}

export interface NbdServerOptions {
  exports: NbdExport[];
  /** Export served to clients asking for the empty name. */
  defaultExport?: string;
  tls?: NbdTlsOptions;
  logger?: NbdLogger;
  /** Per-connection cap on in-flight payload plus queued reply bytes (default 64 MiB). */
  maxBufferedBytes?: number;
  handshakeTimeoutMs?: number;
}

export type NbdListenOptions = { path: string } | { host?: string; port: number };

/**
 * An NBD server (fixed newstyle) exporting BlockDevices over a unix socket or TCP.
 * Devices are not owned: close() drops connections but leaves devices open.
 *
 *   const server = new NbdServer({ exports: [{ name: 'disk', device }], tls: { cert, key } });
 *   await server.listen({ path: '/run/lazybd/disk.sock' }); // or { host, port }
 *   // clients: nbd+unix:///disk?socket=... (nbds+unix:// with TLS)
 *   await server.close();
 *
 * Device errors reach clients as NBD error values; see errno.ts for how a device
 * chooses one (an `errno` name on the thrown error).
 */
export class NbdServer {
  private readonly exports: ExportRegistry;
  private readonly connections = new Set<NbdConnection>();
  private readonly logger: NbdLogger;
  private readonly secureContext: SecureContext | undefined;
  private readonly tlsMode: 'none' | 'optional' | 'required';
  private readonly net: Server;
  private closing = false;
  private onUnixSocket = false;
  private nextId = 1;

  constructor(private readonly options: NbdServerOptions) {
    this.exports = new ExportRegistry(options.defaultExport);
    for (const entry of options.exports) this.exports.add(entry);
    this.logger = options.logger ?? stderrLogger;
    this.secureContext = options.tls && createSecureContext({ cert: options.tls.cert, key: options.tls.key });
    this.tlsMode = options.tls ? (options.tls.mode ?? 'required') : 'none';
    this.net = createServer((socket) => this.accept(socket));
    this.net.on('error', (err) => this.logger.warn(`listener: ${err.message}`));
  }

  /** Resolves once listening; returns the bound address (port for TCP, path for unix). */
  async listen(where: NbdListenOptions): Promise<{ path?: string; port?: number }> {
    await new Promise<void>((resolve, reject) => {
      const fail = (err: Error) => reject(new NbdServerError(`cannot listen: ${err.message}`, { cause: err }));
      this.net.once('error', fail);
      const done = () => {
        this.net.off('error', fail);
        resolve();
      };
      if ('path' in where) this.net.listen(where.path, done);
      else this.net.listen(where.port, where.host ?? '127.0.0.1', done);
    });
    const address = this.net.address();
    this.onUnixSocket = typeof address === 'string';
    return typeof address === 'string' ? { path: address } : { port: address?.port };
  }

  addExport(entry: NbdExport): void {
    this.exports.add(entry);
  }

  /** Later clients cannot select it; connections already serving it carry on. */
  removeExport(name: string): boolean {
    return this.exports.remove(name);
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  /** Clients past the handshake on export `name`. */
  clientsOf(name: string): number {
    let n = 0;
    for (const c of this.connections) if (c.exportName === name) n++;
    return n;
  }

  /** Drops every client of export `name` (requests in flight are not answered). */
  disconnectClientsOf(name: string): void {
    for (const c of this.connections) if (c.exportName === name) c.destroy();
  }

  /** Stops listening and drops every connection. Devices stay open. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    const closed = this.net.listening ? once(this.net, 'close') : Promise.resolve();
    this.net.close();
    for (const connection of this.connections) connection.destroy();
    await closed;
  }

  private accept(socket: Socket): void {
    if (this.closing) {
      socket.destroy();
      return;
    }
    if (this.onUnixSocket) widenSendBuffer(socket);
    const connection = new NbdConnection(
      socket,
      {
        policy: { exports: this.exports, tls: this.tlsMode, shuttingDown: () => this.closing },
        secureContext: this.secureContext,
        logger: this.logger,
        maxBufferedBytes: this.options.maxBufferedBytes ?? DEFAULT_CONNECTION_BUFFER,
        handshakeTimeoutMs: this.options.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS,
      },
      `conn ${this.nextId++}`,
      (c) => this.connections.delete(c),
    );
    this.connections.add(connection);
  }
}
