// A byte-level NBD client for tests and harnesses: the client side of the handshake and
// of simple-reply transmission, built from lib/nbd/protocol.ts (the one place the numbers live).
import { connect, type Socket } from 'node:net';
import { IHAVEOPT, NBDMAGIC, Opt, REP_ACK, REQUEST_MAGIC, SIMPLE_REPLY_MAGIC } from '../../lib/nbd/protocol.js';

/** Exact reads off a socket, and a flag for when the server hung up. */
export class RawClient {
  private buffered: Buffer = Buffer.alloc(0);
  private wake: (() => void) | null = null;
  ended = false;
  constructor(readonly socket: Socket) {
    socket.on('data', (d: Buffer) => {
      this.buffered = this.buffered.length === 0 ? d : Buffer.concat([this.buffered, d]);
      this.wake?.();
    });
    socket.on('close', () => {
      this.ended = true;
      this.wake?.();
    });
    socket.on('error', () => {});
  }
  static open(path: string): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const s = connect(path, () => resolve(new RawClient(s)));
      s.once('error', reject);
    });
  }
  async read(n: number): Promise<Buffer> {
    while (this.buffered.length < n) {
      if (this.ended) throw new Error(`connection closed with ${this.buffered.length}/${n} bytes`);
      await new Promise<void>((r) => (this.wake = r));
    }
    const out = this.buffered.subarray(0, n);
    this.buffered = this.buffered.subarray(n);
    return out;
  }
  /** Resolves true if the server closes the connection within `ms`. */
  async closedWithin(ms: number): Promise<boolean> {
    const deadline = Date.now() + ms;
    while (!this.ended && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    return this.ended;
  }
  write(b: Buffer): void {
    this.socket.write(b);
  }
  close(): void {
    this.socket.destroy();
  }
}

/** An option request; `declaredLength` may lie about the payload (hostile-client tests). */
export function option(code: number, data: Buffer = Buffer.alloc(0), declaredLength = data.length): Buffer {
  const b = Buffer.alloc(16 + data.length);
  b.writeBigUInt64BE(IHAVEOPT, 0);
  b.writeUInt32BE(code, 8);
  b.writeUInt32BE(declaredLength, 12);
  data.copy(b, 16);
  return b;
}

/** A transmission request header (and payload, for writes). */
export function request(type: number, cookie: number, offset: number, length: number, payload?: Buffer): Buffer {
  const b = Buffer.alloc(28 + (payload?.length ?? 0));
  b.writeUInt32BE(REQUEST_MAGIC, 0);
  b.writeUInt16BE(type, 6);
  b.writeUInt32BE(cookie, 12);
  b.writeBigUInt64BE(BigInt(offset), 16);
  b.writeUInt32BE(length, 24);
  payload?.copy(b, 28);
  return b;
}

export async function readOptionReply(c: RawClient): Promise<{ option: number; type: number; data: Buffer }> {
  const h = await c.read(20);
  return { option: h.readUInt32BE(8), type: h.readUInt32BE(12), data: await c.read(h.readUInt32BE(16)) };
}

/** Greeting + client flags (fixed newstyle, no zeroes). */
export async function hello(path: string): Promise<RawClient> {
  const c = await RawClient.open(path);
  const greeting = await c.read(18);
  if (greeting.readBigUInt64BE(0) !== NBDMAGIC) {
    c.close();
    throw new Error(`not an NBD server: greeting ${greeting.toString('hex')}`);
  }
  c.write(Buffer.from([0, 0, 0, 3]));
  return c;
}

/** Handshake through NBD_OPT_GO with simple replies. */
export async function enter(path: string, name: string): Promise<RawClient> {
  const c = await hello(path);
  const n = Buffer.from(name);
  const data = Buffer.alloc(6 + n.length);
  data.writeUInt32BE(n.length, 0);
  n.copy(data, 4);
  c.write(option(Opt.GO, data));
  for (;;) {
    const r = await readOptionReply(c);
    if (r.type === REP_ACK) return c;
    if (r.type >= 0x80000000) {
      c.close();
      throw new Error(`NBD_OPT_GO ${name} failed with reply type 0x${r.type.toString(16)}`);
    }
  }
}

export async function simpleReply(c: RawClient): Promise<{ error: number; cookie: number }> {
  const h = await c.read(16);
  if (h.readUInt32BE(0) !== SIMPLE_REPLY_MAGIC) throw new Error(`bad simple reply magic ${h.toString('hex', 0, 4)}`);
  return { error: h.readUInt32BE(4), cookie: h.readUInt32BE(12) };
}
