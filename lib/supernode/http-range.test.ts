import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseRange } from './http-server.js';

test('byte ranges: closed, open-ended, suffix, clamped to the blob', () => {
  assert.equal(parseRange('bytes=0-99', 1000), { start: 0, end: 99 });
  assert.equal(parseRange('bytes=900-', 1000), { start: 900, end: 999 });
  assert.equal(parseRange('bytes=-100', 1000), { start: 900, end: 999 });
  assert.equal(parseRange('bytes=-5000', 1000), { start: 0, end: 999 });
  assert.equal(parseRange('bytes=990-2000', 1000), { start: 990, end: 999 });
});

test('unsatisfiable ranges are undefined (416); malformed and multiple ranges are bad requests', () => {
  assert.is(parseRange('bytes=1000-', 1000), undefined);
  assert.is(parseRange('bytes=50-10', 1000), undefined);
  assert.is(parseRange('bytes=-0', 1000), undefined);
  assert.is(parseRange('bytes=0-0', 0), undefined);
  for (const h of ['bytes=0-1,5-6', 'items=0-5', 'bytes=a-b', 'bytes=-', '0-5']) {
    let code: string | undefined;
    try {
      parseRange(h, 1000);
    } catch (e) {
      code = (e as { code?: string }).code;
    }
    assert.is(code, 'E_SUPERNODE_BAD_REQUEST', h);
  }
});

test.run();
