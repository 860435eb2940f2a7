import { createHash, randomBytes } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { HEADER_SIZE } from '../format/layer-spec.js';
import { makeLayer } from '../source/test-support.js';
import { PIECE_SIZE, decodeLayout, encodeLayout, layerBlobLayout, wholeBlobLayout } from './blob-layout.js';

async function layerLayout() {
  const l = await makeLayer(4096, 9, { tail: 1000 });
  const metaStart = HEADER_SIZE + l.chunks.dataLength;
  return { l, layout: await layerBlobLayout(l.digest, l.blob.length, l.blob.subarray(0, HEADER_SIZE), l.blob.subarray(metaStart)) };
}

test('a lazybd layer: head, chunk table and tail together are the blob', async () => {
  const { l, layout } = await layerLayout();
  assert.is(layout.kind, 'layer');
  assert.is(layout.table.count, 9);
  assert.ok(Buffer.concat([layout.head, l.blob.subarray(layout.table.dataOffset, layout.table.dataOffset + layout.table.dataLength), layout.tail]).equals(l.blob));
});

test('a header that disagrees with the trailer, or metadata that does not match its digest, is no layout', async () => {
  const { l } = await layerLayout();
  const header = Buffer.from(l.blob.subarray(0, HEADER_SIZE));
  header.writeUInt32LE(8192, 24);
  const metaStart = HEADER_SIZE + l.chunks.dataLength;
  const fails = (p: Promise<unknown>) => p.then(() => undefined, (e: Error & { code?: string }) => e.code);
  assert.is(await fails(layerBlobLayout(l.digest, l.blob.length, header, l.blob.subarray(metaStart))), 'E_LAYER_BAD_FIELD');
  const meta = Buffer.from(l.blob.subarray(metaStart));
  meta[3]! ^= 1;
  assert.is(await fails(layerBlobLayout(l.digest, l.blob.length, l.blob.subarray(0, HEADER_SIZE), meta)), 'E_LAYER_META_DIGEST');
});

test('layouts survive encoding; a rotted, foreign or mislabelled file decodes to nothing', async () => {
  const { layout } = await layerLayout();
  const blob = randomBytes(2 * PIECE_SIZE + 77);
  const pieces = [0, 1, 2].map((i) => createHash('sha256').update(blob.subarray(i * PIECE_SIZE, (i + 1) * PIECE_SIZE)).digest());
  const digest = `sha256:${createHash('sha256').update(blob).digest('hex')}`;
  const whole = wholeBlobLayout(digest, blob.length, Buffer.concat(pieces));
  assert.is(whole.table.length(2), 77);
  for (const l of [layout, whole]) {
    const text = encodeLayout(l);
    const back = (await decodeLayout(text, l.digest))!;
    assert.ok(back, `${l.kind} decodes`);
    assert.equal([back.kind, back.size, back.head, back.tail, back.table.encoded], [l.kind, l.size, l.head, l.tail, l.table.encoded]);
    assert.is(await decodeLayout(text, `sha256:${'0'.repeat(64)}`), undefined, 'another digest');
    const doc = JSON.parse(text) as { tail: string; table?: string };
    const flip = (b64: string) => `${b64[0] === 'A' ? 'B' : 'A'}${b64.slice(1)}`;
    const rotted = JSON.stringify({ ...doc, ...(doc.table ? { table: flip(doc.table) } : { tail: flip(doc.tail) }) });
    assert.is(await decodeLayout(rotted, l.digest), undefined, 'a changed byte');
    assert.is(await decodeLayout(text.slice(0, text.length / 2), l.digest), undefined, 'a torn file');
  }
});

test.run();
