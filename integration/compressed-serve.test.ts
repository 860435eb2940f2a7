import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { LAZYBD_BIN, lazybd } from './support/cli.js';
import { FaultProxy } from './support/fault-proxy.js';
import { metricByLabel, metricSum } from './support/prometheus-text.js';
import { spawnOwned, waitFor, type Owned } from './support/processes.js';
import { startRegistry, type RegistryServer } from './support/registry-server.js';
import { seededRandom } from './support/seeded-random.js';
import { startSupernode, writeTokenFile } from './support/supernode-process.js';
import { requireTools } from './support/tools.js';

const run = promisify(execFile);
const SIZE = 32 << 20;
const CODECS = ['none', 'lz4', 'zstd', 'zstd:9'] as const;

interface Ctx {
  dir: string;
  registry: RegistryServer;
  proxy: FaultProxy;
  source: Buffer;
}

interface LayerReport {
  /** The image's, from inspect's dedup report. */
  dedupRatio: number;
  dataBytes: number;
  storedBytes: number;
  compression: { none: number; zstd: number; lz4: number };
}

/**
 * A 32 MiB disk holding what images hold: 6 MiB of text-like bytes (compress well), 2 MiB of
 * random bytes (do not), 1 MiB of a repeated block (dedup within the layer), the rest holes.
 */
function makeSource(): Buffer {
  const rand = seededRandom(13);
  const words = ['lib', 'usr', 'share', 'doc', 'copyright', 'GNU', 'General', 'Public', 'License', 'version', '2.1', 'Debian', '\n', 'bin', 'etc'];
  const source = Buffer.alloc(SIZE);
  // Exactly 6 MiB of text (write() stops at the end of the view), so later extents stay chunk-aligned.
  const text = source.subarray(1 << 20, 7 << 20);
  for (let at = 0; at < text.length; ) at += text.write(`${words[rand(words.length)]} `, at);
  for (let i = 12 << 20; i < 14 << 20; i++) source[i] = rand(256);
  const block = source.subarray(12 << 20, (12 << 20) + 65536);
  for (let k = 0; k < 16; k++) block.copy(source, (20 << 20) + k * 65536);
  return source;
}

async function createImage(c: Ctx, store: string, raw: string, ref: string, compress: string): Promise<LayerReport> {
  const env = { LAZYBD_STORE: join(c.dir, store) };
  const created = await lazybd(['create', raw, ref, '--compress', compress, '--json'], env);
  assert.is(created.status, 0, created.stderr);
  const inspect = await lazybd(['inspect', ref, '--json'], env);
  assert.is(inspect.status, 0, inspect.stderr);
  const report = JSON.parse(inspect.stdout) as { layers: LayerReport[]; dedup: { ratio: number } };
  return { ...report.layers[0]!, dedupRatio: report.dedup.ratio };
}

async function push(c: Ctx, store: string, ref: string, remote: string): Promise<void> {
  const r = await lazybd(['push', ref, remote, '--plain-http'], { LAZYBD_STORE: join(c.dir, store) });
  assert.is(r.status, 0, r.stderr);
}

async function serve(c: Ctx, store: string, image: string, extra: string[] = []): Promise<{ daemon: Owned; uri: string }> {
  const sock = join(c.dir, `${store}-${Math.random().toString(36).slice(2)}.sock`);
  const daemon = spawnOwned(process.execPath, [LAZYBD_BIN, 'serve', image, '--plain-http', '--socket', sock, '--prefetch-rate', '0', '--io-timeout', '5', ...extra], {
    env: { ...process.env, LAZYBD_STORE: join(c.dir, store), XDG_RUNTIME_DIR: c.dir },
  });
  await waitFor(() => /at nbd\+unix:/.test(daemon.output()) || daemon.child.exitCode !== null, 20_000, 'serve to start');
  assert.ok(daemon.child.exitCode === null, `serve exited: ${daemon.output()}`);
  return { daemon, uri: /at (nbd\+unix:\S+)/.exec(daemon.output())![1]! };
}

/** The whole device through nbdcopy (a second NBD client), compared with the source. */
async function copyEquals(c: Ctx, uri: string, source: Buffer, what: string): Promise<void> {
  const out = join(c.dir, 'copy.raw');
  await run('nbdcopy', [uri, out]);
  assert.ok((await readFile(out)).equals(source), `${what}: device differs from the source`);
  await rm(out);
}

const compressed = suite('compressed layers');
let ctx: Ctx | undefined;

compressed.before(async () => {
  if (!(await requireTools('docker-registry', 'nbdcopy'))) return;
  const dir = await mkdtemp(join(tmpdir(), 'lazybd-compressed-'));
  const registry = await startRegistry();
  const proxy = await FaultProxy.start(registry.host);
  const source = makeSource();
  await writeFile(join(dir, 'disk.raw'), source);
  ctx = { dir, registry, proxy, source };
});

compressed.after(async () => {
  if (!ctx) return;
  await ctx.proxy.stop();
  await ctx.registry.stop();
  await rm(ctx.dir, { recursive: true, force: true });
});

compressed('every codec: the layer shrinks as it should, serves byte-identical locally and lazily, and a lazy read moves only stored bytes', async () => {
  if (!ctx) return;
  const c = ctx;
  const sizes: Record<string, number> = {};
  for (const codec of CODECS) {
    const name = codec.replace(':', '-');
    const layer = await createImage(c, 'origin', join(c.dir, 'disk.raw'), `disk-${name}:v1`, codec);
    sizes[codec] = layer.storedBytes;
    assert.is(layer.dataBytes, 9 << 20, 'holes are left out');
    if (codec === 'none') {
      assert.is(layer.storedBytes, layer.dataBytes);
      assert.is(layer.compression.zstd + layer.compression.lz4, 0);
    } else {
      assert.ok(layer.compression.none >= 32, `${codec}: the 2 MiB of random bytes stay raw (${layer.compression.none} raw chunks)`);
      // 3 MiB stays raw; the 6 MiB of text (about 4 bits of entropy per word) shrinks by more than half, lz4 a little less.
      const bound = codec === 'lz4' ? 5.5 : 4.5;
      assert.ok(layer.storedBytes < bound * (1 << 20), `${codec}: ${layer.storedBytes} stored for 9 MiB`);
    }
    const verify = await lazybd(['verify', `disk-${name}:v1`], { LAZYBD_STORE: join(c.dir, 'origin') });
    assert.is(verify.status, 0, verify.stderr);
    const local = await serve(c, 'origin', `disk-${name}:v1`, ['--metrics', '127.0.0.1:0']);
    try {
      await copyEquals(c, local.uri, c.source, `${codec} from the local store`);
      const metricsUrl = /metrics at (http:\S+)/.exec(local.daemon.output())![1]!;
      const scrape = async () => {
        const text = await (await fetch(metricsUrl)).text();
        return { hits: metricSum(text, 'lazybd_decoded_chunk_hits_total'), misses: metricSum(text, 'lazybd_decoded_chunk_misses_total'), dedup: metricSum(text, 'lazybd_image_chunk_dedup_ratio') };
      };
      const first = await scrape();
      await copyEquals(c, local.uri, c.source, `${codec} from the local store, again`);
      const second = await scrape();
      const compressedChunks = layer.compression.zstd + layer.compression.lz4;
      // Each compressed chunk decodes once (its 16 equal copies share one decode); the second copy decodes nothing.
      assert.ok(first.misses <= compressedChunks && (compressedChunks === 0 || first.misses > 0), `${codec}: ${first.misses} decodes for ${compressedChunks} compressed chunks`);
      assert.is(second.misses, first.misses, `${codec}: the second copy is served from decoded chunks`);
      assert.ok(compressedChunks === 0 || second.hits > first.hits, `${codec}: decoded hits ${first.hits} -> ${second.hits}`);
      assert.ok(Math.abs(first.dedup - layer.dedupRatio) < 1e-9, `${codec}: dedup gauge ${first.dedup}, inspect ${layer.dedupRatio}`);
    } finally {
      await local.daemon.stop();
    }
    await push(c, 'origin', `disk-${name}:v1`, `${c.proxy.host}/comp/${name}:v1`);
    c.proxy.blobBytes = 0;
    const lazy = await serve(c, `lazy-${name}`, `${c.proxy.host}/comp/${name}:v1`);
    try {
      await copyEquals(c, lazy.uri, c.source, `${codec} lazily`);
    } finally {
      await lazy.daemon.stop();
    }
    // Stored bytes once (the repeated block's chunks are fetched once: 16 of them less), plus config and metadata.
    assert.ok(c.proxy.blobBytes <= layer.storedBytes + (64 << 10), `${codec}: moved ${c.proxy.blobBytes} for ${layer.storedBytes} stored`);
    assert.ok(c.proxy.blobBytes >= layer.storedBytes - 16 * 65536, `${codec}: moved ${c.proxy.blobBytes}, less than the distinct chunks`);
  }
  assert.ok(sizes['zstd']! < sizes['lz4']!, 'zstd stores less than lz4');
  assert.ok(sizes['zstd:9']! <= sizes['zstd']!, 'a higher level stores no more');
});

compressed('two images sharing most chunks: the second fetches only the chunks it does not share', async () => {
  if (!ctx) return;
  const c = ctx;
  // Image B: the same disk with 256 KiB rewritten in the middle of the text (made on its own, so its layer blob differs).
  const changed = Buffer.from(c.source);
  changed.fill(0x5a, 3 << 20, (3 << 20) + (256 << 10));
  await writeFile(join(c.dir, 'disk-b.raw'), changed);
  const a = await createImage(c, 'share-origin', join(c.dir, 'disk.raw'), 'base-a:v1', 'zstd');
  const b = await createImage(c, 'share-origin', join(c.dir, 'disk-b.raw'), 'base-b:v1', 'zstd');
  await push(c, 'share-origin', 'base-a:v1', `${c.proxy.host}/share/a:v1`);
  await push(c, 'share-origin', 'base-b:v1', `${c.proxy.host}/share/b:v1`);
  c.proxy.blobBytes = 0;
  const first = await serve(c, 'share-node', `${c.proxy.host}/share/a:v1`);
  try {
    await copyEquals(c, first.uri, c.source, 'image A');
  } finally {
    await first.daemon.stop();
  }
  const afterA = c.proxy.blobBytes;
  assert.ok(afterA >= a.storedBytes - 16 * 65536, `A moved ${afterA}`);
  // The same node (store and chunk cache) now serves B.
  const second = await serve(c, 'share-node', `${c.proxy.host}/share/b:v1`);
  try {
    await copyEquals(c, second.uri, changed, 'image B');
  } finally {
    await second.daemon.stop();
  }
  const forB = c.proxy.blobBytes - afterA;
  // 256 KiB rewritten touches 4-5 chunks of 64 KiB; everything else is in the cache under the same digests.
  assert.ok(forB > 0, 'the changed chunks are fetched');
  assert.ok(forB <= 6 * 65536 + (64 << 10), `B moved ${forB} bytes of its ${b.storedBytes} stored`);
  const inspect = await lazybd(['inspect', 'base-a:v1', '--json'], { LAZYBD_STORE: join(c.dir, 'share-origin') });
  const dedup = (JSON.parse(inspect.stdout) as { dedup: { chunks: number; uniqueChunks: number; ratio: number } }).dedup;
  assert.is(dedup.chunks - dedup.uniqueChunks, 16, 'a block and its 16 copies are one chunk');
  assert.ok(dedup.ratio > 1);
});

compressed('a supernode preheats a compressed image with its stored bytes; with the registry gone a node reads it all through the supernode', async () => {
  if (!ctx) return;
  const c = ctx;
  const layer = await createImage(c, 'sn-origin', join(c.dir, 'disk.raw'), 'sn:v1', 'zstd');
  const remote = `${c.proxy.host}/sn/disk:v1`;
  await push(c, 'sn-origin', 'sn:v1', remote);
  const tokenFile = await writeTokenFile(c.dir);
  const sn = await startSupernode(c.proxy.host, join(c.dir, 'sn-cache'), tokenFile);
  try {
    c.proxy.blobBytes = 0;
    const pre = await lazybd(['preheat', remote, '--supernode', sn.url, '--token-file', tokenFile, '--json']);
    assert.is(pre.status, 0, pre.stderr);
    // Distinct stored bytes once (the 16 equal chunks once), plus the metadata: never the decoded data.
    const uniqueStored = layer.storedBytes - 16 * 65536;
    assert.ok(c.proxy.blobBytes >= uniqueStored && c.proxy.blobBytes <= layer.storedBytes + (64 << 10), `preheat moved ${c.proxy.blobBytes} for ${layer.storedBytes} stored`);
    c.proxy.mode = 'down';
    const node = await serve(c, 'sn-node', remote, ['--supernode', sn.url, '--token-file', tokenFile, '--metrics', '127.0.0.1:0']);
    try {
      await copyEquals(c, node.uri, c.source, 'through the supernode');
      const text = await (await fetch(/metrics at (http:\S+)/.exec(node.daemon.output())![1]!)).text();
      const fromSupernode = metricByLabel(text, 'lazybd_source_bytes_total', 'source')['supernode'] ?? 0;
      assert.ok(fromSupernode >= uniqueStored && fromSupernode <= layer.storedBytes, `the node got ${fromSupernode} stored bytes from the supernode`);
    } finally {
      await node.daemon.stop();
    }
  } finally {
    c.proxy.mode = 'pass';
    await sn.stop();
  }
});

compressed.run();
