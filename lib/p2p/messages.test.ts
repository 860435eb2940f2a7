import { randomBytes } from 'node:crypto';
import { Packr } from 'msgpackr';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { PeerProtocolError } from './errors.js';
import { layerKey } from './layer-key.js';
import { FrameDecoder, decodeMessage, encodeFrame, type PeerMessage } from './messages.js';
import { MAX_FRAME_BODY, Msg, PROTOCOL_VERSION } from './protocol.js';

const layer = layerKey('sha256:' + 'ab'.repeat(32));
const every: PeerMessage[] = [
  { t: Msg.Hello, v: PROTOCOL_VERSION, layers: [layer, layerKey('sha256:' + 'cd'.repeat(32))] },
  { t: Msg.Have, layer, count: 13, bits: Buffer.from([0b10110001, 0b00010101]) },
  { t: Msg.HaveUpdate, layer, chunks: [0, 7, 12, 2 ** 31] },
  { t: Msg.Request, id: 2 ** 32 + 5, layer, first: 9, count: 16 },
  { t: Msg.Request, id: 6, layer, first: 0, count: 1, fetch: true },
  { t: Msg.Data, id: 3, index: 9, bytes: randomBytes(3000) },
  { t: Msg.Data, id: 4, index: 0, bytes: Buffer.alloc(0) },
  { t: Msg.Cancel, id: 3 },
  { t: Msg.Choke },
  { t: Msg.Unchoke },
  { t: Msg.Error, id: 3, code: 'E_P2P_NOT_HELD', message: 'chunk 9 not held' },
  { t: Msg.Error, code: 'E_P2P_VERSION', message: 'speaks v1' },
];

/** Comparable form: keys sorted, Buffers as hex. */
const show = (m: PeerMessage) =>
  JSON.stringify(Object.fromEntries(Object.entries(m).sort(([a], [b]) => a.localeCompare(b))), (_, v) => (v && v.type === 'Buffer' ? Buffer.from(v.data).toString('hex') : v));

function decodeAll(pieces: Buffer[]): PeerMessage[] {
  const out: PeerMessage[] = [];
  const decoder = new FrameDecoder((m) => out.push(m));
  // Copies, so no message can alias a buffer the test reuses.
  for (const p of pieces) decoder.push(Buffer.from(p));
  assert.ok(decoder.idle, 'decoder holds a partial frame at the end');
  return out;
}

const stream = Buffer.concat(every.map(encodeFrame));
const expected = every.map(show);

test('every message survives encode and decode', () => {
  assert.equal(decodeAll([stream]).map(show), expected);
});

test('a stream split at any one point decodes to the same messages', () => {
  for (let at = 0; at <= stream.length; at++) {
    assert.equal(decodeAll([stream.subarray(0, at), stream.subarray(at)]).map(show), expected, `split at ${at}`);
  }
});

test('a stream fed byte by byte, and in uneven pieces, decodes the same', () => {
  assert.equal(decodeAll(Array.from(stream, (_, i) => stream.subarray(i, i + 1))).map(show), expected);
  const pieces: Buffer[] = [];
  for (let at = 0, n = 1; at < stream.length; at += n, n = (n * 7 + 3) % 4099) pieces.push(stream.subarray(at, at + n));
  assert.equal(decodeAll(pieces).map(show), expected);
});

test('a frame longer than the limit is refused from its header', () => {
  const header = Buffer.alloc(4);
  header.writeUInt32BE(MAX_FRAME_BODY + 1);
  const decoder = new FrameDecoder(() => assert.unreachable('no message'));
  assert.throws(() => decoder.push(header), (e: unknown) => e instanceof PeerProtocolError && /limit/.test(e.message));
});

test('malformed bodies are protocol errors, not crashes', () => {
  const bad: unknown[] = [
    { t: 99 },
    [Msg.Hello, 1],
    { t: Msg.Hello, v: -1, layers: [] },
    { t: Msg.Hello, v: 1, layers: [Buffer.alloc(31)] },
    { t: Msg.Have, layer, count: 9, bits: Buffer.alloc(1) },
    { t: Msg.Request, id: 1, layer, first: 0, count: 0 },
    { t: Msg.Request, id: 1, layer, first: 0, count: 100_000 },
    { t: Msg.Request, id: 1, layer, first: 0, count: 1, fetch: 1 },
    { t: Msg.Data, id: 1.5, index: 0, bytes: Buffer.alloc(1) },
    { t: Msg.Data, id: 1, index: 0, bytes: 'text' },
    { t: Msg.Error, code: 5 },
  ];
  const packr = new Packr({ useRecords: false });
  for (const body of bad) assert.throws(() => decodeMessage(packr.pack(body)), (e: unknown) => e instanceof PeerProtocolError && (e as PeerProtocolError).code === 'E_P2P_PROTOCOL', JSON.stringify(body));
  const isProtocolError = (e: unknown) => e instanceof PeerProtocolError;
  assert.throws(() => decodeMessage(Buffer.from([0xc1])), isProtocolError, 'reserved msgpack byte');
  assert.throws(() => new FrameDecoder(() => {}).push(Buffer.alloc(4)), isProtocolError, 'empty body');
});

test.run();
