import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { NbdProtocolError } from './errors.js';
import { FrameDecoder, type FrameSink, type NbdRequest } from './frame-decoder.js';
import { Cmd, IHAVEOPT, Opt, REQUEST_MAGIC } from './protocol.js';

const LIMITS = { maxOptionLength: 1024, maxWritePayload: 300 };

function option(code: number, data: Buffer): Buffer {
  const b = Buffer.alloc(16 + data.length);
  b.writeBigUInt64BE(IHAVEOPT, 0);
  b.writeUInt32BE(code, 8);
  b.writeUInt32BE(data.length, 12);
  data.copy(b, 16);
  return b;
}

function request(type: number, flags: number, cookie: bigint, offset: bigint, length: number, payload?: Buffer): Buffer {
  const b = Buffer.alloc(28 + (payload?.length ?? 0));
  b.writeUInt32BE(REQUEST_MAGIC, 0);
  b.writeUInt16BE(flags, 4);
  b.writeUInt16BE(type, 6);
  b.writeBigUInt64BE(cookie, 8);
  b.writeBigUInt64BE(offset, 16);
  b.writeUInt32BE(length, 24);
  payload?.copy(b, 28);
  return b;
}

const bytes = (n: number, seed: number) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff));

/** A whole session: flags, options (GO switches to requests), requests incl. an oversize skipped WRITE. */
const flags = Buffer.from([0, 0, 0, 3]);
const stream = Buffer.concat([
  flags,
  option(Opt.STRUCTURED_REPLY, Buffer.alloc(0)),
  option(Opt.LIST_META_CONTEXT, bytes(40, 1)),
  option(Opt.GO, bytes(7, 2)),
  request(Cmd.READ, 0, 0x0102030405060708n, 4096n, 4096),
  request(Cmd.WRITE, 1, 0xffffffffffffffffn, 2n ** 40n + 3n, 100, bytes(100, 3)),
  request(Cmd.WRITE, 0, 7n, 0n, 0, Buffer.alloc(0)),
  request(Cmd.WRITE, 0, 8n, 0n, 301, bytes(301, 4)),
  request(Cmd.BLOCK_STATUS, 8, 9n, 512n, 1 << 30),
  request(Cmd.WRITE, 0, 10n, 7n, 3, bytes(3, 5)),
  request(Cmd.DISC, 0, 11n, 0n, 0),
]);

/** Decodes `pieces` in order and returns a printable trace of every frame. */
function decode(pieces: Buffer[]): string[] {
  const trace: string[] = [];
  const show = (r: NbdRequest) =>
    `req type=${r.type} flags=${r.flags} cookie=${r.cookieHi}:${r.cookieLo} off=${r.offset} len=${r.length} payload=${r.payload === null ? 'skipped' : r.payload.toString('hex')}`;
  const sink: FrameSink = {
    clientFlags: (f) => {
      trace.push(`flags ${f}`);
      decoder.setMode('option');
    },
    option: (code, data) => {
      trace.push(`opt ${code} ${data.toString('hex')}`);
      if (code === Opt.GO) decoder.setMode('request');
    },
    request: (r) => trace.push(show(r)),
  };
  const decoder = new FrameDecoder(sink, LIMITS);
  // Each piece is copied so no frame can alias a buffer we later reuse.
  for (const p of pieces) decoder.push(Buffer.from(p));
  assert.ok(decoder.idle, 'decoder holds a partial frame at the end');
  return trace;
}

const whole = decode([stream]);

test('decodes every frame of a session in one chunk', () => {
  assert.is(whole.length, 11);
  assert.is(whole[0], 'flags 3');
  assert.is(whole[4], 'req type=0 flags=0 cookie=16909060:84281096 off=4096 len=4096 payload=skipped');
  assert.ok(whole[5]!.includes(`off=${2 ** 40 + 3} len=100 payload=${bytes(100, 3).toString('hex')}`));
  assert.ok(whole[5]!.includes('cookie=4294967295:4294967295'));
  assert.ok(whole[6]!.endsWith('len=0 payload='));
  assert.ok(whole[7]!.endsWith('len=301 payload=skipped'), 'oversize WRITE payload is consumed, not delivered');
  assert.ok(whole[9]!.endsWith(`payload=${bytes(3, 5).toString('hex')}`), 'framing resumes after a skipped payload');
});

test('any single split point yields the same frames', () => {
  for (let i = 1; i < stream.length; i++) {
    assert.equal(decode([stream.subarray(0, i), stream.subarray(i)]), whole, `split at ${i}`);
  }
});

test('byte-at-a-time and random multi-splits yield the same frames', () => {
  const single = Array.from({ length: stream.length }, (_, i) => stream.subarray(i, i + 1));
  assert.equal(decode(single), whole);
  let seed = 12345;
  const rand = (n: number) => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  for (let round = 0; round < 500; round++) {
    const cuts = Array.from({ length: 1 + rand(12) }, () => rand(stream.length)).sort((a, b) => a - b);
    const pieces: Buffer[] = [];
    let from = 0;
    for (const c of [...cuts, stream.length]) {
      pieces.push(stream.subarray(from, c));
      from = c;
    }
    assert.equal(decode(pieces), whole, `cuts ${cuts.join(',')}`);
  }
});

test('bad magic and absurd option lengths are protocol errors', () => {
  const sink: FrameSink = { clientFlags: () => decoder.setMode('option'), option: () => {}, request: () => {} };
  const decoder = new FrameDecoder(sink, LIMITS);
  decoder.push(flags);
  const huge = option(Opt.INFO, Buffer.alloc(0));
  huge.writeUInt32BE(0xffffffff, 12);
  assert.throws(() => decoder.push(huge), (e: unknown) => e instanceof NbdProtocolError && /length/.test(e.message));
  const d2 = new FrameDecoder(sink, LIMITS);
  d2.setMode('option');
  assert.throws(() => d2.push(Buffer.from('NBDMAGICxxxxxxxxxxxxxxxx')), (e: unknown) => e instanceof NbdProtocolError);
  const d3 = new FrameDecoder(sink, LIMITS);
  d3.setMode('request');
  const bad = request(Cmd.READ, 0, 1n, 0n, 1);
  bad.writeUInt32BE(0xdeadbeef, 0);
  assert.throws(() => d3.push(bad), (e: unknown) => e instanceof NbdProtocolError && /magic/.test(e.message));
});

test.run();
