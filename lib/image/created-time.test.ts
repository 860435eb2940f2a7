import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { imageCreatedTime } from './created-time.js';

const now = () => new Date('2030-05-06T07:08:09.123Z');

test('SOURCE_DATE_EPOCH, when set, is the creation time; unset or empty means now', () => {
  assert.is(imageCreatedTime({ SOURCE_DATE_EPOCH: '0' }, now), '1970-01-01T00:00:00.000Z');
  assert.is(imageCreatedTime({ SOURCE_DATE_EPOCH: '1700000000' }, now), '2023-11-14T22:13:20.000Z');
  assert.is(imageCreatedTime({ SOURCE_DATE_EPOCH: '253402300799' }, now), '9999-12-31T23:59:59.000Z');
  assert.is(imageCreatedTime({}, now), '2030-05-06T07:08:09.123Z');
  assert.is(imageCreatedTime({ SOURCE_DATE_EPOCH: '' }, now), '2030-05-06T07:08:09.123Z');
});

test('a malformed SOURCE_DATE_EPOCH is refused with E_SOURCE_DATE_EPOCH, exit status 2', () => {
  for (const bad of ['abc', '1.5', '-1', ' 1', '1e9', '0x10', '2024-01-01', '253402300800', '99999999999999999999']) {
    try {
      imageCreatedTime({ SOURCE_DATE_EPOCH: bad }, now);
      assert.unreachable(bad);
    } catch (e) {
      const err = e as { code: string; exitStatus: number; message: string };
      assert.is(err.code, 'E_SOURCE_DATE_EPOCH', bad);
      assert.is(err.exitStatus, 2);
      assert.match(err.message, JSON.stringify(bad));
    }
  }
});

test.run();
