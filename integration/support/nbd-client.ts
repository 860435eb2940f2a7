import { createHash } from 'node:crypto';
import { nbdsh } from '../nbd-fixture.js';

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
