/**
 * One of `peers` at random, weighted by 1/score (score: recent time per chunk × load):
 * a peer half as fast or twice as busy gets half the requests, a stalled one next to
 * none, and equal peers share the work evenly, so no one peer takes every request.
 */
export function choosePeer<T extends { readonly score: number }>(peers: readonly T[], random: () => number): T | undefined {
  if (peers.length <= 1) return peers[0];
  const weights = peers.map((p) => 1 / p.score);
  let r = random() * weights.reduce((a, b) => a + b, 0);
  for (let i = 0; i < peers.length; i++) if ((r -= weights[i]!) < 0) return peers[i];
  return peers[peers.length - 1];
}
