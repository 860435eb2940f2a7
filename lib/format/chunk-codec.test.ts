import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as zstdNapi from 'zstd-napi';
import { compressChunk, decodeChunk, decodeZstdPure, formatCodec, parseCodec, type CodecChoice } from './chunk-codec.js';
import { Compression, MAX_CHUNK_SIZE } from './layer-spec.js';
import { decodeLz4Block } from './lz4-block.js';

const ZSTD3: CodecChoice = { codec: 'zstd', level: 3 };
const ZSTD19: CodecChoice = { codec: 'zstd', level: 19 };
const LZ4: CodecChoice = { codec: 'lz4' };
const SIZES = [4096, 65536, 65536 + 512, 12345];

/** Seeded, so a failing property case can be replayed. */
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

const WORDS = ['block', 'device', 'image', 'lazy', 'chunk', 'the', 'of', 'and', 'layer', 'extent', 'zero', 'read'];
function textLike(n: number, rand = prng(1)): Buffer {
  let s = '';
  while (s.length < n) s += `${WORDS[Math.floor(rand() * WORDS.length)]}${rand() < 0.1 ? '\n' : ' '}`;
  return Buffer.from(s.slice(0, n), 'latin1');
}

/** Runs of one repeated byte, random bytes and text, in random order and lengths. */
function mixed(n: number, rand = prng(2)): Buffer {
  const out = Buffer.alloc(n);
  for (let at = 0; at < n; ) {
    const run = Math.min(n - at, 1 + Math.floor(rand() * 3000));
    const kind = rand();
    if (kind < 0.4) out.fill(Math.floor(rand() * 256), at, at + run);
    else if (kind < 0.7) for (let i = 0; i < run; i++) out[at + i] = Math.floor(rand() * 256);
    else textLike(run, rand).copy(out, at);
    at += run;
  }
  return out;
}

const KINDS: [string, (n: number) => Buffer][] = [
  ['random', (n) => randomBytes(n)],
  ['zeroes', (n) => Buffer.alloc(n)],
  ['text', (n) => textLike(n)],
  ['mixed', (n) => mixed(n)],
];

function decodePure(stored: Buffer, compression: Compression, dataLength: number): Buffer {
  if (compression === Compression.Zstd) return decodeZstdPure(stored, dataLength);
  if (compression === Compression.Lz4) {
    const out = Buffer.alloc(dataLength);
    const written = decodeLz4Block(stored, out);
    if (written !== dataLength) throw new Error(`lz4 block decoded to ${written} bytes, not ${dataLength}`);
    return out;
  }
  return stored;
}

function codeOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    return (e as { code?: string }).code ?? `plain ${(e as Error).message}`;
  }
  return 'no error';
}

function decodeError(stored: Buffer, compression: Compression, dataLength: number): { code: string; message: string } {
  try {
    decodeChunk(stored, compression, dataLength);
  } catch (e) {
    return e as { code: string; message: string };
  }
  return { code: 'no error', message: '' };
}

test('every codec round-trips every kind of data and size, through the native and the pure decoders', () => {
  for (const choice of [ZSTD3, ZSTD19, LZ4]) {
    for (const [kind, make] of KINDS) {
      for (const size of SIZES) {
        const data = make(size);
        const { compression, stored } = compressChunk(data, choice);
        const what = `${formatCodec(choice)} ${kind} ${size}`;
        if (kind === 'random') assert.is(compression, Compression.None, what);
        else assert.ok(compression !== Compression.None && stored.length < size, what);
        assert.ok(decodeChunk(stored, compression, size).equals(data), `${what} native`);
        assert.ok(decodePure(stored, compression, size).equals(data), `${what} pure`);
      }
    }
  }
});

test('a chunk that does not shrink is stored raw: the same buffer, compression none', () => {
  const data = randomBytes(65536);
  for (const choice of [ZSTD3, LZ4, { codec: 'none' } as CodecChoice]) {
    const r = compressChunk(data, choice);
    assert.is(r.compression, Compression.None);
    assert.is(r.stored, data);
  }
  const zeroes = Buffer.alloc(65536);
  assert.is(compressChunk(zeroes, { codec: 'none' }).stored, zeroes);
  assert.is(decodeChunk(data, Compression.None, data.length), data);
});

test('zstd frames state their content size', () => {
  for (const size of SIZES) {
    const { compression, stored } = compressChunk(textLike(size), ZSTD3);
    assert.is(compression, Compression.Zstd);
    const descriptor = stored[4];
    assert.ok(descriptor >> 6 !== 0 || (descriptor >> 5) & 1, `size ${size}: descriptor ${descriptor.toString(2)}`);
    assert.match(decodeError(stored, compression, size + 1).message, `content size ${size} `);
  }
});

test('larger chunks: multi-block zstd frames (RLE, raw and compressed blocks) and long lz4 matches', () => {
  const data = Buffer.concat([Buffer.alloc(1 << 20), randomBytes(300_000), textLike(1 << 20), Buffer.alloc(MAX_CHUNK_SIZE - (2 << 20) - 300_000, 7)]);
  for (const choice of [{ codec: 'zstd', level: 1 } as CodecChoice, LZ4]) {
    const { compression, stored } = compressChunk(data, choice);
    assert.ok(compression !== Compression.None);
    assert.ok(decodeChunk(stored, compression, data.length).equals(data));
    assert.ok(decodePure(stored, compression, data.length).equals(data));
  }
});

test('property: 200 random buffers round-trip exactly with each codec', () => {
  const seed = Date.now() >>> 0;
  const rand = prng(seed);
  for (let i = 0; i < 200; i++) {
    const length = 1 + Math.floor(rand() * 70000);
    const data = mixed(length, rand);
    const level = 1 + (i % 19);
    for (const choice of [{ codec: 'none' }, { codec: 'zstd', level }, LZ4] as CodecChoice[]) {
      const what = `seed ${seed} case ${i} length ${length} ${formatCodec(choice)}`;
      const { compression, stored } = compressChunk(data, choice);
      assert.ok(stored.length <= length, what);
      assert.ok(decodeChunk(stored, compression, length).equals(data), `${what} native`);
      assert.ok(decodePure(stored, compression, length).equals(data), `${what} pure`);
    }
  }
});

test('a flipped bit never yields anything but E_CHUNK_DECODE or a buffer of the right length', () => {
  const data = mixed(8000);
  for (const choice of [ZSTD3, LZ4]) {
    const { compression, stored } = compressChunk(data, choice);
    assert.ok(compression !== Compression.None);
    for (let i = 0; i < stored.length; i++) {
      for (const bit of [0x01, 0x80]) {
        const bad = Buffer.from(stored);
        bad[i] ^= bit;
        for (const [how, decode] of [
          ['native', () => decodeChunk(bad, compression, data.length)],
          ['pure', () => decodePure(bad, compression, data.length)],
        ] as const) {
          let out: Buffer | undefined;
          try {
            out = decode();
          } catch (e) {
            // The pure decoders throw plain errors; decodeChunk wraps them.
            if (how === 'native') assert.is((e as { code?: string }).code, 'E_CHUNK_DECODE', `${formatCodec(choice)} byte ${i}`);
          }
          if (out) assert.is(out.length, data.length);
        }
      }
    }
  }
});

test('truncated streams are rejected', () => {
  const data = textLike(65536);
  for (const choice of [ZSTD3, LZ4]) {
    const { compression, stored } = compressChunk(data, choice);
    for (const cut of [1, 2, 5, Math.floor(stored.length / 2), stored.length - 1]) {
      const short = stored.subarray(0, stored.length - cut);
      assert.is(decodeError(short, compression, data.length).code, 'E_CHUNK_DECODE', `${formatCodec(choice)} cut ${cut}`);
      if (compression === Compression.Lz4) assert.throws(() => decodePure(short, compression, data.length));
    }
  }
  assert.match(decodeError(Buffer.alloc(0), Compression.Zstd, 10).message, /bad magic/);
});

test('zstd: trailing bytes, a second frame, a skippable frame and a missing content size are rejected', () => {
  const data = textLike(65536);
  const { stored } = compressChunk(data, ZSTD3);
  assert.match(decodeError(Buffer.concat([stored, Buffer.from([0])]), Compression.Zstd, data.length).message, /1 bytes after the frame/);
  const twice = Buffer.concat([stored, stored]);
  assert.match(decodeError(twice, Compression.Zstd, data.length * 2).message, /content size 65536 /);
  assert.match(decodeError(twice, Compression.Zstd, data.length).message, /bytes after the frame/);
  const skippable = Buffer.from('502a4d1800000000', 'hex');
  assert.match(decodeError(skippable, Compression.Zstd, 0).message, /bad magic/);
  const unsized = zstdNapi.compress(data, { compressionLevel: 3, contentSizeFlag: false });
  assert.match(decodeError(unsized, Compression.Zstd, data.length).message, /no content size/);
});

test('zstd: a content size other than the chunk length is rejected before anything is allocated', () => {
  // A 1 TiB content size: had a decoder run, it would have failed to allocate, with another message.
  const header = Buffer.from('28b52ffdc000', 'hex'); // 8-byte content size, a window descriptor
  const size = Buffer.alloc(8);
  size.writeBigUInt64LE(1n << 40n);
  const rawBlock = Buffer.from([0x01 | (4 << 3), 0, 0, 1, 2, 3, 4]); // last, raw, 4 bytes
  const huge = Buffer.concat([header, size, rawBlock]);
  const e = decodeError(huge, Compression.Zstd, 4096);
  assert.is(e.code, 'E_CHUNK_DECODE');
  assert.match(e.message, `content size ${2 ** 40} is not the chunk's length 4096`);
  assert.match(decodeError(huge, Compression.Zstd, MAX_CHUNK_SIZE + 1).message, /chunk length .* is not between/);
  // The same frame stating 4 bytes decodes: the walk accepts a valid hand-made frame.
  size.writeBigUInt64LE(4n);
  assert.equal([...decodeChunk(Buffer.concat([header, size, rawBlock]), Compression.Zstd, 4)], [1, 2, 3, 4]);
});

test('lz4: a match before the output start, offset 0 and output overruns are rejected', () => {
  const before = Buffer.from([0x10, 0x61, 0x02, 0x00, 0x00]); // 1 literal, match at offset 2 from output 1
  const zero = Buffer.from([0x10, 0x61, 0x00, 0x00, 0x00]);
  const good = Buffer.from([0x10, 0x61, 0x01, 0x00, 0x00]); // 'a' then 4 more 'a' (overlapping match)
  assert.equal(decodeChunk(good, Compression.Lz4, 5).toString(), 'aaaaa');
  assert.is(decodePure(good, Compression.Lz4, 5).toString(), 'aaaaa');
  for (const [name, block, length, reason] of [
    ['offset before start', before, 5, /points before the start/],
    ['offset 0', zero, 5, /offset 0/],
    ['match overrun', good, 4, /overruns the 4-byte output/],
    ['literal overrun', Buffer.from([0x50, 1, 2, 3, 4, 5]), 4, /overruns the 4-byte output/],
    ['ends after a match', good.subarray(0, 4), 5, /ends after a match/],
  ] as const) {
    assert.is(decodeError(block, Compression.Lz4, length).code, 'E_CHUNK_DECODE', name);
    assert.throws(() => decodeLz4Block(block, Buffer.alloc(length)), reason, name);
  }
  const data = textLike(65536);
  const { stored } = compressChunk(data, LZ4);
  assert.is(decodeError(stored, Compression.Lz4, data.length - 1).code, 'E_CHUNK_DECODE');
  assert.match(decodeError(stored, Compression.Lz4, data.length + 1).message, /65536 bytes, its entry says 65537/);
  assert.throws(() => decodePure(stored, Compression.Lz4, data.length + 1));
});

test('none: stored length must be the chunk length; unknown compression values are rejected', () => {
  assert.match(decodeError(Buffer.alloc(10), Compression.None, 11).message, /holds 10 bytes, its entry says 11/);
  const e = decodeError(Buffer.alloc(10), 7 as Compression, 10) as { code: string; message: string; exitStatus?: number };
  assert.is(e.code, 'E_CHUNK_DECODE');
  assert.is(e.exitStatus, 4);
  assert.match(e.message, /unknown compression 7/);
});

test('parseCodec accepts none, lz4, zstd and zstd:1..19, and formatCodec inverts it', () => {
  assert.equal(parseCodec('none'), { codec: 'none' });
  assert.equal(parseCodec('lz4'), { codec: 'lz4' });
  assert.equal(parseCodec('zstd'), { codec: 'zstd', level: 3 });
  for (let level = 1; level <= 19; level++) {
    assert.equal(parseCodec(`zstd:${level}`), { codec: 'zstd', level });
    assert.is(formatCodec(parseCodec(`zstd:${level}`)), `zstd:${level}`);
  }
  assert.is(formatCodec(parseCodec('zstd')), 'zstd:3');
  assert.is(formatCodec({ codec: 'zstd' }), 'zstd:3');
  for (const text of ['none', 'lz4']) assert.is(formatCodec(parseCodec(text)), text);
});

test('parseCodec rejects anything else with E_BAD_CODEC, naming the accepted forms', () => {
  for (const text of ['', 'gzip', 'ZSTD', 'zstd:', 'zstd:0', 'zstd:20', 'zstd:03', 'zstd:3x', 'zstd: 3', ' lz4', 'lz4:1', 'none:1']) {
    try {
      parseCodec(text);
      assert.unreachable(text);
    } catch (e) {
      const err = e as { code: string; exitStatus: number; message: string };
      assert.is(err.code, 'E_BAD_CODEC', text);
      assert.is(err.exitStatus, 2);
      assert.match(err.message, 'none, lz4, zstd or zstd:<level 1..19>');
    }
  }
});

test('compressChunk rejects a malformed choice with E_BAD_CODEC', () => {
  const data = Buffer.alloc(100);
  for (const choice of [{ codec: 'gzip' }, { codec: 'zstd', level: 0 }, { codec: 'zstd', level: 2.5 }, { codec: 'zstd', level: 20 }, { codec: 'lz4', level: 1 }]) {
    assert.is(codeOf(() => compressChunk(data, choice as CodecChoice)), 'E_BAD_CODEC', JSON.stringify(choice));
  }
});

const CODEC_MODULE = fileURLToPath(new URL('./chunk-codec.js', import.meta.url));

/** Decodes the given cases in a child with LAZYBD_NATIVE_CODECS=0: the whole decodeChunk path on fzstd and lz4-block. */
const PURE_CHILD = `
import { codecBackends, compressChunk, decodeChunk } from ${JSON.stringify(CODEC_MODULE)};
import { createHash } from 'node:crypto';
let input = '';
for await (const part of process.stdin) input += part;
const code = (f) => { try { f(); return 'no error'; } catch (e) { return e.code; } };
const decoded = JSON.parse(input).map(([stored, compression, length]) => {
  try { return createHash('sha256').update(decodeChunk(Buffer.from(stored, 'base64'), compression, length)).digest('hex'); }
  catch (e) { return e.code + ' ' + e.message; }
});
const tiny = Buffer.alloc(100);
console.log(JSON.stringify({
  backends: codecBackends(),
  encode: [code(() => compressChunk(tiny, { codec: 'zstd', level: 3 })), code(() => compressChunk(tiny, { codec: 'lz4' })), code(() => compressChunk(tiny, { codec: 'none' }))],
  decoded,
}));
`;

test('LAZYBD_NATIVE_CODECS=0: decodeChunk runs on fzstd and the pure lz4 decoder; encoding is unavailable', () => {
  const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
  const cases: [Buffer, Compression, number, string | RegExp][] = [];
  for (const choice of [ZSTD3, LZ4]) {
    for (const [, make] of KINDS) {
      for (const size of SIZES) {
        const data = make(size);
        const { compression, stored } = compressChunk(data, choice);
        cases.push([stored, compression, size, sha(data)]);
      }
    }
    const { compression, stored } = compressChunk(textLike(65536), choice);
    cases.push([stored.subarray(0, stored.length - 3), compression, 65536, /^E_CHUNK_DECODE /]);
    cases.push([stored, compression, 65537, /^E_CHUNK_DECODE /]);
  }
  const zstd = compressChunk(textLike(65536), ZSTD3).stored;
  cases.push([Buffer.concat([zstd, zstd]), Compression.Zstd, 65536, /^E_CHUNK_DECODE zstd chunk: \d+ bytes after the frame/]);
  cases.push([Buffer.from([0x10, 0x61, 0x02, 0x00, 0x00]), Compression.Lz4, 5, /^E_CHUNK_DECODE lz4 chunk is corrupt: .*points before the start/]);

  const child = spawnSync(process.execPath, ['--input-type=module', '-e', PURE_CHILD], {
    input: JSON.stringify(cases.map(([stored, compression, length]) => [stored.toString('base64'), compression, length])),
    env: { ...process.env, LAZYBD_NATIVE_CODECS: '0' },
    encoding: 'utf8',
    maxBuffer: 1 << 26,
  });
  assert.is(child.status, 0, child.stderr);
  const out = JSON.parse(child.stdout) as { backends: unknown; encode: string[]; decoded: string[] };
  assert.equal(out.backends, { zstd: { encode: null, decode: 'fzstd' }, lz4: { encode: null, decode: 'pure' } });
  assert.equal(out.encode, ['E_CODEC_UNAVAILABLE', 'E_CODEC_UNAVAILABLE', 'no error']);
  cases.forEach(([, , , expected], i) => {
    if (typeof expected === 'string') assert.is(out.decoded[i], expected, `case ${i}`);
    else assert.match(out.decoded[i], expected, `case ${i}`);
  });
});

test.run();
