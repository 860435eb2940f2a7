import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { NotFastError } from '../device/raw-file-device.js';
import { LazybdError } from '../errors.js';
import { errnoOf } from './errno.js';
import { Errno } from './protocol.js';

class FullError extends LazybdError {
  readonly errno = 'ENOSPC';
  constructor() {
    super('TEST_FULL', 'no room');
  }
}

/** A real Node system error, as fs produces them. */
function systemError(code: string): Error {
  return Object.assign(new Error(code), { code, errno: -1, syscall: 'write' });
}

test('errno hints on thrown errors pick the NBD error', () => {
  assert.is(errnoOf(new FullError()), Errno.ENOSPC);
  assert.is(errnoOf(new NotFastError()), Errno.ENOTSUP);
  assert.is(errnoOf(Object.assign(new Error('x'), { errno: 'EPERM' })), Errno.EPERM);
});

test('fs errors map by code as the spec asks; everything else is EIO', () => {
  assert.is(errnoOf(systemError('ENOSPC')), Errno.ENOSPC);
  assert.is(errnoOf(systemError('EDQUOT')), Errno.ENOSPC);
  assert.is(errnoOf(systemError('EFBIG')), Errno.ENOSPC);
  assert.is(errnoOf(systemError('EROFS')), Errno.EPERM);
  assert.is(errnoOf(systemError('EBADF')), Errno.EIO);
  assert.is(errnoOf(new LazybdError('SOMETHING', 'broke')), Errno.EIO);
  assert.is(errnoOf(Object.assign(new Error('x'), { errno: 'ENOENT' })), Errno.EIO, 'names outside the NBD set are ignored');
  assert.is(errnoOf('a string'), Errno.EIO);
  assert.is(errnoOf(undefined), Errno.EIO);
});

test.run();
