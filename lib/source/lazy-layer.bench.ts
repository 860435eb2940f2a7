// Cached 4 KiB random reads through LazyLayer against one plain pread. The machine may be
// shared, so variants are interleaved over several rounds and CPU time per read (user +
// system, a load-independent cost) is reported next to wall-clock latency.
// Run: npx tsc -p . && node dist/lib/source/lazy-layer.bench.js
import { read } from 'node:fs';
import { open, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ChunkCache } from './chunk-cache.js';
import { LazyLayer } from './lazy-layer.js';
import { SourceChain } from './source-chain.js';
import { makeLayer, MemorySource, withTempDir } from './test-support.js';

const CHUNK = 65536;
const CHUNKS = 1024; // 64 MiB
const READS = 5000;
const ROUNDS = 5;

type ReadAt = (physical: number, into: Buffer) => Promise<void>;

interface Sample {
  qd1Median: number;
  qd1P99: number;
  qd32PerSec: number;
  cpuPerRead: number;
}

function offsets(n: number, dataOffset: number): number[] {
  return Array.from({ length: n }, () => dataOffset + Math.floor((Math.random() * CHUNK * CHUNKS) / 4096) * 4096);
}

async function sample(readAt: ReadAt, dataOffset: number): Promise<Sample> {
  const buf = Buffer.alloc(4096);
  const lat: number[] = [];
  for (const p of offsets(READS, dataOffset)) {
    const t0 = process.hrtime.bigint();
    await readAt(p, buf);
    lat.push(Number(process.hrtime.bigint() - t0) / 1000);
  }
  lat.sort((a, b) => a - b);
  const todo = offsets(READS * 2, dataOffset);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      const b = Buffer.alloc(4096);
      for (let p = todo.pop(); p !== undefined; p = todo.pop()) await readAt(p, b);
    }),
  );
  const wall = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  return { qd1Median: lat[lat.length >> 1]!, qd1P99: lat[Math.floor(lat.length * 0.99)]!, qd32PerSec: (READS * 2) / wall, cpuPerRead: (cpu.user + cpu.system) / (READS * 2) };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

await withTempDir(async (dir) => {
  const layer = await makeLayer(CHUNK, CHUNKS);
  const t = layer.chunks;
  const chain = new SourceChain({ sources: [new MemorySource('registry', layer)] });
  const filler = await ChunkCache.open(dir, { maxBytes: 1 << 30 });
  await new LazyLayer({ blob: layer.digest, chunks: t, cache: filler, chain }).warm(t.dataOffset, t.dataLength);
  await filler.close();

  const flat = join(dir, 'flat');
  await writeFile(flat, layer.blob);
  const fh = await open(flat, 'r');
  const variants: [string, ReadAt, number][] = [['plain pread, one file (baseline)', (p, into) => new Promise((res, rej) => read(fh.fd, into, 0, 4096, p, (e) => (e ? rej(e) : res()))), 0]];
  const caches: ChunkCache[] = [];
  for (const maxOpenFiles of [0, 2048]) {
    const cache = await ChunkCache.open(join(dir), { maxBytes: 1 << 30, maxOpenFiles });
    caches.push(cache);
    const l = new LazyLayer({ blob: layer.digest, chunks: t, cache, chain });
    const t0 = performance.now();
    await l.readInto(t.dataOffset, Buffer.alloc(t.dataLength), 0, t.dataLength);
    console.log(`first read after open, verifies all 64 MiB (maxOpenFiles ${maxOpenFiles}): ${(performance.now() - t0).toFixed(0)} ms`);
    variants.push([`LazyLayer cached, maxOpenFiles ${maxOpenFiles}`, (p, into) => l.readInto(p, into, 0, 4096), t.dataOffset]);
  }
  const results = variants.map(() => [] as Sample[]);
  for (let r = 0; r < ROUNDS; r++) for (const [k, [, readAt, base]] of variants.entries()) results[k]!.push(await sample(readAt, base));
  for (const [k, [name]] of variants.entries()) {
    const s = results[k]!;
    const m = (f: (x: Sample) => number) => median(s.map(f));
    console.log(
      `${name.padEnd(36)} QD1 p50 ${m((x) => x.qd1Median).toFixed(1)} µs, p99 ${m((x) => x.qd1P99).toFixed(0)} µs | QD32 ${(m((x) => x.qd32PerSec) / 1000).toFixed(1)} k reads/s, CPU ${m((x) => x.cpuPerRead).toFixed(1)} µs/read`,
    );
  }
  await fh.close();
  for (const c of caches) await c.close();
});
