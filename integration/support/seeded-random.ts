/**
 * Deterministic PRNG (mulberry32) for property tests and benchmarks: a failing case
 * replays from its seed, and every benchmark run measures the same data.
 * Returns an integer in [0, n).
 */
export function seededRandom(seed: number): (n: number) => number {
  return (n) => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n);
  };
}
