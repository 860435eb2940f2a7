import { createHash } from 'node:crypto';

/**
 * Rendezvous (highest-random-weight) hashing of chunks over supernodes: each chunk has one
 * home, every node computes the same one from the member list alone, and removing a member
 * moves only the chunks that lived there. The order after the home is the failover order.
 */
export function rendezvousOrder(members: readonly string[], chunkDigest: Buffer): number[] {
  const scores = members.map((m) => createHash('sha256').update(m).update(chunkDigest).digest().readBigUInt64BE(0));
  return members.map((_, i) => i).sort((a, b) => (scores[b]! > scores[a]! ? 1 : scores[b]! < scores[a]! ? -1 : a - b));
}

/** The member a chunk lives on. */
export function rendezvousHome(members: readonly string[], chunkDigest: Buffer): number {
  return rendezvousOrder(members, chunkDigest)[0]!;
}

/**
 * The identity a supernode URL stands for in the hashing: scheme, host and port, lower-cased,
 * so `http://H:1/` and `http://h:1` place chunks alike on every node.
 */
export function memberId(url: string): string {
  const u = new URL(url);
  return `${u.protocol}//${u.host}`.toLowerCase();
}
