import { createHash } from 'node:crypto';
import { NbdReader } from '../support/nbd-client.js';

export interface ReplayOutcome {
  reads: number;
  /** Reads the server answered with an NBD error, or that never got an answer. */
  readErrors: number;
  /** Reads whose bytes differ from the source. */
  mismatches: number;
  bytes: number;
  /** sha256 of everything read, in order (equals the source's replay hash when all is right). */
  sha256: string;
  /** Why the replay stopped early, if it did. */
  failure?: string;
}

/** Replays the start-up reads through one NBD connection, one read at a time, checking each against the source. */
export async function replayReads(socketPath: string, exportName: string, reads: readonly [number, number][], expected: readonly string[]): Promise<ReplayOutcome> {
  const all = createHash('sha256');
  const out: ReplayOutcome = { reads: 0, readErrors: 0, mismatches: 0, bytes: 0, sha256: '' };
  let reader: NbdReader | undefined;
  try {
    reader = await NbdReader.open(socketPath, exportName);
    for (const [i, [offset, length]] of reads.entries()) {
      const r = await reader.read(offset, length);
      out.reads++;
      if (!Buffer.isBuffer(r)) {
        out.readErrors++;
        continue;
      }
      all.update(r);
      out.bytes += r.length;
      if (createHash('sha256').update(r).digest('hex') !== expected[i]) out.mismatches++;
    }
  } catch (e) {
    out.failure = (e as Error).message;
    out.readErrors += reads.length - out.reads;
  } finally {
    reader?.close();
  }
  out.sha256 = all.digest('hex');
  return out;
}
