import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { crc32c } from './crc32c.js';
import { decodeHeader, encodeHeader } from './journal-header.js';
import { decodeRecord, encodeRecord, type JournalRecord } from './journal-record.js';
import { JOURNAL_RECORD_SIZE, JournalOp } from './upper-spec.js';

test('CRC-32C check values', () => {
  assert.is(crc32c(Buffer.from('123456789')), 0xe3069283);
  assert.is(crc32c(Buffer.alloc(32)), 0x8a9136aa);
  const b = Buffer.from('xx123456789yy');
  assert.is(crc32c(b, 2, 11), 0xe3069283);
});

test('record: byte layout and round trip', () => {
  const r: JournalRecord = { op: JournalOp.Data, offset: 2 ** 40 + 512, length: 4096, sequence: 0xfffffffe, dataChecksum: 0xdeadbeef };
  const b = Buffer.alloc(JOURNAL_RECORD_SIZE + 8);
  encodeRecord(r, b, 8);
  assert.is(b.readUInt32LE(8), 512);
  assert.is(b.readUInt32LE(12), 256); // 2^40 / 2^32
  assert.is(b.readUInt32LE(16), 4096);
  assert.is(b.readUInt32LE(24), 0xfffffffe);
  assert.is(b.readUInt32LE(28), 0xdeadbeef);
  assert.is(b.readUInt32LE(32), JournalOp.Data);
  assert.is(b.readUInt32LE(36), crc32c(b, 8, 36));
  assert.equal(decodeRecord(b, 8), r);
});

test('record: any flipped bit, a reserved byte, an unknown op or a value past 2^48 is not a record', () => {
  const b = Buffer.alloc(JOURNAL_RECORD_SIZE);
  encodeRecord({ op: JournalOp.Zero, offset: 1024, length: 512, sequence: 7, dataChecksum: 0 }, b, 0);
  for (let bit = 0; bit < JOURNAL_RECORD_SIZE * 8; bit++) {
    const c = Buffer.from(b);
    c[bit >> 3]! ^= 1 << (bit & 7);
    assert.is(decodeRecord(c, 0), null, `bit ${bit}`);
  }
  const resealed = (edit: (c: Buffer) => void) => {
    const c = Buffer.from(b);
    edit(c);
    c.writeUInt32LE(crc32c(c, 0, 28), 28);
    return decodeRecord(c, 0);
  };
  assert.is(resealed((c) => (c[25] = 1)), null);
  assert.is(resealed((c) => (c[24] = 9)), null);
  assert.is(resealed((c) => (c[7] = 1)), null);
  assert.ok(resealed(() => undefined) !== null);
});

test('header: round trip, and every flaw is E_UPPER_CORRUPT', () => {
  const h = encodeHeader({ virtualSize: 10 * 2 ** 30 + 100, baseSequence: 42 });
  assert.is(h.subarray(0, 8).toString('latin1'), 'lazybdUJ');
  assert.equal(decodeHeader(h, 'x'), { virtualSize: 10 * 2 ** 30 + 100, baseSequence: 42 });
  for (const at of [0, 8, 12, 16, 24, 28]) {
    const c = Buffer.from(h);
    c[at]! ^= 1;
    try {
      decodeHeader(c, 'x');
      assert.unreachable(`flip at ${at}`);
    } catch (e) {
      assert.is((e as { code?: string }).code, 'E_UPPER_CORRUPT');
    }
  }
});

test.run();
