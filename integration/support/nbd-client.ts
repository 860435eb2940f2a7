import { createHash } from 'node:crypto';
import { Cmd } from '../../lib/nbd/protocol.js';
import { nbdsh } from '../nbd-fixture.js';
import { enter, request, simpleReply, type RawClient } from './nbd-wire.js';

/** `errno` is its name, as libnbd reports it (e.g. "EIO"). */
export type ReadResult = { sha256: string } | { errno: string };

/**
 * Reads ranges of an NBD export through libnbd's Python binding (nbdsh): one connection,
 * one result per range — the sha256 of the bytes, or the errno the server answered with.
 */
export async function nbdRead(uri: string, ranges: [offset: number, length: number][]): Promise<ReadResult[]> {
  const script = `
import hashlib, json
h.connect_uri(${JSON.stringify(uri)})
out = []
for off, n in ${JSON.stringify(ranges)}:
    try:
        out.append({"sha256": hashlib.sha256(h.pread(n, off)).hexdigest()})
    except nbd.Error as e:
        out.append({"errno": e.errno or "unknown"})
print(json.dumps(out))
`;
  return JSON.parse(await nbdsh(script)) as ReadResult[];
}

/** What `nbdRead` answers for bytes that are right. */
export function expectBytes(b: Buffer): ReadResult {
  return { sha256: createHash('sha256').update(b).digest('hex') };
}

/**
 * A small in-process NBD reader (simple replies, one request in flight), for harnesses
 * that drive many exports at once without a client process per export.
 */
export class NbdReader {
  private cookie = 0;
  private constructor(private readonly c: RawClient) {}

  static async open(socketPath: string, exportName: string): Promise<NbdReader> {
    return new NbdReader(await enter(socketPath, exportName));
  }

  /** The bytes, or the NBD error number the server answered with. */
  async read(offset: number, length: number): Promise<Buffer | { errno: number }> {
    const cookie = ++this.cookie;
    this.c.write(request(Cmd.READ, cookie, offset, length));
    const reply = await simpleReply(this.c);
    if (reply.cookie !== cookie) throw new Error(`NBD reply for cookie ${reply.cookie}, expected ${cookie}`);
    if (reply.error !== 0) return { errno: reply.error };
    return this.c.read(length);
  }

  close(): void {
    this.c.close();
  }
}
