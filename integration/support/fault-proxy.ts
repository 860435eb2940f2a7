import { createServer, request as httpRequest, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export type ProxyMode = 'pass' | 'corrupt' | 'down' | 'stall';

/**
 * An HTTP proxy in front of a registry for tests: counts the blob bytes it relays and
 * can flip bits in blob bodies ('corrupt'), refuse every request ('down', as if the
 * registry died) or hold requests unanswered ('stall').
 */
export class FaultProxy {
  mode: ProxyMode = 'pass';
  /** Body bytes of blob GET responses relayed so far. */
  blobBytes = 0;
  blobRequests = 0;
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    readonly host: string,
  ) {}

  static async start(upstream: string): Promise<FaultProxy> {
    const [upHost, upPort] = upstream.split(':');
    let proxy!: FaultProxy;
    const server = createServer((req, res) => {
      if (proxy.mode === 'down') {
        req.socket.destroy();
        return;
      }
      if (proxy.mode === 'stall') return;
      const isBlob = req.method === 'GET' && /\/blobs\/sha256:/.test(req.url ?? '');
      const up = httpRequest({ host: upHost, port: Number(upPort), method: req.method, path: req.url, headers: req.headers }, (upRes: IncomingMessage) => {
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        if (isBlob) proxy.blobRequests++;
        upRes.on('data', (chunk: Buffer) => {
          if (isBlob) {
            proxy.blobBytes += chunk.length;
            if (proxy.mode === 'corrupt' && (upRes.statusCode === 206 || upRes.statusCode === 200)) {
              chunk = Buffer.from(chunk);
              chunk[chunk.length >> 1] ^= 0x40;
            }
          }
          res.write(chunk);
        });
        upRes.on('end', () => res.end());
      });
      up.on('error', () => res.destroy());
      req.pipe(up);
    });
    server.on('connection', (s) => {
      proxy.sockets.add(s);
      s.on('close', () => proxy.sockets.delete(s));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    proxy = new FaultProxy(server, `127.0.0.1:${(server.address() as AddressInfo).port}`);
    return proxy;
  }

  /** Drops every open connection (keep-alive ones too), as a registry restart would. */
  dropConnections(): void {
    for (const s of this.sockets) s.destroy();
  }

  async stop(): Promise<void> {
    this.dropConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }
}
