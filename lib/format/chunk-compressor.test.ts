import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { compressChunk, decodeChunk, type CodecChoice } from './chunk-codec.js';
import { ChunkCompressor } from './chunk-compressor.js';
import { Compression } from './layer-spec.js';

const CHUNK = 65536;
const COMPRESSOR_MODULE = fileURLToPath(new URL('./chunk-compressor.js', import.meta.url));

/** Whole chunks of zeroes, text and random bytes, the last one short. */
function batch(chunks: number, seed: number): Buffer {
  const parts: Buffer[] = [];
  for (let i = 0; i < chunks; i++) {
    const kind = (i + seed) % 3;
    if (kind === 0) parts.push(Buffer.alloc(CHUNK, seed));
    else if (kind === 1) parts.push(Buffer.from(`chunk ${i} of batch ${seed}: some text that repeats. `.repeat(2000)).subarray(0, CHUNK));
    else parts.push(randomBytes(CHUNK));
  }
  parts.push(randomBytes(1000), Buffer.alloc(11345, 1)); // a short last chunk of 12345 bytes
  return Buffer.concat(parts);
}

function expected(data: Buffer, choice: CodecChoice): { compression: Compression; stored: Buffer }[] {
  const out = [];
  for (let at = 0; at < data.length; at += CHUNK) out.push(compressChunk(data.subarray(at, at + CHUNK), choice));
  return out;
}

async function failure(p: Promise<unknown>): Promise<{ code?: string; message: string }> {
  try {
    await p;
  } catch (e) {
    return e as Error & { code?: string };
  }
  return { message: 'no error' };
}

for (const choice of [{ codec: 'zstd', level: 3 }, { codec: 'lz4' }] as CodecChoice[]) {
  test(`${choice.codec}: concurrent calls give, in order, what compressChunk gives per chunk`, async () => {
    const compressor = new ChunkCompressor(choice, { threads: 3 });
    try {
      const inputs = Array.from({ length: 8 }, (_, i) => batch(3 + i, i));
      const originals = inputs.map((b) => Buffer.from(b));
      const calls = inputs.map((b) => compressor.compress(b, CHUNK));
      // The input is copied before compress returns: scribbling over it now changes nothing.
      for (const b of inputs) b.fill(0xee);
      const results = await Promise.all(calls);
      assert.ok(compressor.workers >= 1 && compressor.workers <= 3, `${compressor.workers} workers`);
      results.forEach((got, i) => {
        const want = expected(originals[i], choice);
        assert.is(got.length, want.length);
        got.forEach((r, j) => {
          assert.is(r.compression, want[j].compression, `call ${i} chunk ${j}`);
          assert.ok(r.stored.equals(want[j].stored), `call ${i} chunk ${j}`);
          const length = Math.min(CHUNK, originals[i].length - j * CHUNK);
          assert.ok(decodeChunk(r.stored, r.compression, length).equals(originals[i].subarray(j * CHUNK, j * CHUNK + length)));
        });
        assert.ok(got.some((r) => r.compression === Compression.None) && got.some((r) => r.compression !== Compression.None));
      });
    } finally {
      await compressor.close();
    }
  });
}

test('none: no worker starts, the chunks come back split and never alias the input', async () => {
  const compressor = new ChunkCompressor({ codec: 'none' });
  const data = batch(3, 1);
  const original = Buffer.from(data);
  const results = await compressor.compress(data, CHUNK);
  data.fill(0);
  assert.is(compressor.workers, 0);
  assert.equal(
    results.map((r) => r.compression),
    [Compression.None, Compression.None, Compression.None, Compression.None],
  );
  assert.ok(Buffer.concat(results.map((r) => r.stored)).equals(original));
  assert.is(results[3].stored.length, 12345);
  await compressor.close();
});

test('no input, no chunks; workers start only when a call needs one', async () => {
  const compressor = new ChunkCompressor({ codec: 'lz4' }, { threads: 2 });
  assert.is(compressor.workers, 0);
  assert.equal(await compressor.compress(Buffer.alloc(0), CHUNK), []);
  assert.is(compressor.workers, 0);
  await compressor.compress(batch(1, 0), CHUNK);
  assert.is(compressor.workers, 1);
  await compressor.close();
});

test('close() rejects calls in flight and every later call with E_COMPRESSOR_CLOSED', async () => {
  const compressor = new ChunkCompressor({ codec: 'zstd', level: 19 }, { threads: 1 });
  const inFlight = failure(compressor.compress(batch(16, 2), CHUNK));
  await compressor.close();
  assert.is((await inFlight).code, 'E_COMPRESSOR_CLOSED');
  assert.is(compressor.workers, 0);
  const later = await failure(compressor.compress(batch(1, 0), CHUNK));
  assert.is(later.code, 'E_COMPRESSOR_CLOSED');
  assert.match(later.message, 'used after close()');
  await compressor.close();
});

test('a bad choice throws in the constructor, on the calling thread', () => {
  assert.throws(() => new ChunkCompressor({ codec: 'zstd', level: 42 }), (e: { code: string }) => e.code === 'E_BAD_CODEC');
  assert.throws(() => new ChunkCompressor({ codec: 'lz4' }, { threads: 0 }), RangeError);
});

test('without native encoders the constructor throws E_CODEC_UNAVAILABLE synchronously', () => {
  const script = `
    import { ChunkCompressor } from ${JSON.stringify(COMPRESSOR_MODULE)};
    for (const choice of [{ codec: 'zstd' }, { codec: 'lz4' }]) {
      try { new ChunkCompressor(choice); console.log('constructed'); } catch (e) { console.log(e.code); }
    }
    new ChunkCompressor({ codec: 'none' });
    console.log('none ok');
  `;
  const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], { env: { ...process.env, LAZYBD_NATIVE_CODECS: '0' }, encoding: 'utf8' });
  assert.is(child.status, 0, child.stderr);
  assert.equal(child.stdout.trim().split('\n'), ['E_CODEC_UNAVAILABLE', 'E_CODEC_UNAVAILABLE', 'none ok']);
});

test('the process exits on its own without close(), after its call has settled', async () => {
  // Workers are ref'd while a call is in flight: an unref'd one would let the process exit under the await.
  const script = `
    import { ChunkCompressor } from ${JSON.stringify(COMPRESSOR_MODULE)};
    const compressor = new ChunkCompressor({ codec: 'zstd', level: 3 });
    const results = await compressor.compress(Buffer.alloc(200000, 1), 65536);
    console.log(results.length + ' ' + compressor.workers);
  `;
  const started = Date.now();
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  let stdout = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  const status = await new Promise<number | string>((resolve) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      resolve('still running after 10 s');
    }, 10_000);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve(code ?? String(signal));
    });
  });
  assert.is(status, 0);
  assert.is(stdout.trim(), '4 1');
  assert.ok(Date.now() - started < 5000, `took ${Date.now() - started} ms`);
});

test.run();
