// Edge cases driven through libnbd's Python bindings (nbdsh): errors keep the
// connection usable, read-only EPERM, structured replies on and off, block status,
// trim, zero flags, cache, flush, FUA.
import { readFile } from 'node:fs/promises';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { requireTools } from './support/tools.js';
import { nbdsh, pattern, serve } from './nbd-fixture.js';

const MiB = 1024 * 1024;

/** Python prelude: helpers shared by the scripts below. */
const prelude = `
import errno, nbd
def expect_errno(code, fn, *args):
    try:
        fn(*args)
    except nbd.Error as e:
        got = e.errno if isinstance(e.errno, int) else getattr(errno, e.errno)  # a name in some libnbd versions
        assert got == code, "expected %s, got %s (%s)" % (errno.errorcode[code], e.errno, e.string)
        return
    raise AssertionError("expected %s, call succeeded" % errno.errorcode[code])
def connect(uri, structured, strict=True):
    h = nbd.NBD()
    h.set_request_structured_replies(structured)
    if not strict:
        h.set_strict_mode(0)  # send what the client would refuse itself, so the server's answer is tested
    h.add_meta_context("base:allocation")
    h.connect_uri(uri)
    assert h.get_structured_replies_negotiated() == structured
    return h
`;

test('errors leave the connection usable; structured replies on and off', async () => {
  if (!(await requireTools('nbdsh'))) return;
  const s = await serve([{ name: 'd', size: 64 * MiB, content: pattern(MiB, 5) }]);
  try {
    const out = await nbdsh(`${prelude}
for structured in (True, False):
    h = connect("${s.uri('d')}", structured, strict=False)
    size = h.get_size()
    # Misaligned I/O is fine with a minimum block size of 1.
    h.pwrite(b"hello world", 12345)
    assert h.pread(11, 12345) == b"hello world"
    assert h.pread(3, size - 3) == bytes(3)
    # Out of range: EINVAL for reads/trim/cache/block status, ENOSPC for writes.
    expect_errno(errno.EINVAL, h.pread, 4096, size - 100)
    expect_errno(errno.ENOSPC, h.pwrite, b"x" * 200, size - 100)
    expect_errno(errno.EINVAL, h.trim, 8192, size - 4096)
    expect_errno(errno.EINVAL, h.cache, 8192, size - 4096)
    expect_errno(errno.ENOSPC, h.zero, 8192, size - 4096)
    # Larger than the 32 MiB maximum payload.
    expect_errno(errno.EOVERFLOW, h.pread, 32 * 1024 * 1024 + 4096, 0)
    expect_errno(errno.EOVERFLOW, h.pwrite, bytes(32 * 1024 * 1024 + 4096), 0)
    # FAST_ZERO cannot be honoured by a raw file: ENOTSUP, contents untouched.
    expect_errno(errno.ENOTSUP, h.zero, 4096, 12288, nbd.CMD_FLAG_FAST_ZERO)
    assert h.pread(11, 12345) == b"hello world"
    # A flag not valid for the command is EINVAL.
    expect_errno(errno.EINVAL, h.pread, 512, 0, nbd.CMD_FLAG_NO_HOLE)
    if not structured:
        expect_errno(errno.EINVAL, h.block_status, 4096, 0, lambda *a: 0)
    # Still usable after all of that.
    assert h.pread(11, 12345) == b"hello world"
    # FUA write, trim, zero with NO_HOLE, cache, flush.
    h.pwrite(b"\\xab" * 8192, 65536, nbd.CMD_FLAG_FUA)
    assert h.pread(8192, 65536) == b"\\xab" * 8192
    h.trim(4096, 65536, nbd.CMD_FLAG_FUA)
    assert h.pread(8192, 65536) == bytes(4096) + b"\\xab" * 4096
    h.zero(4096, 65536 + 4096, nbd.CMD_FLAG_NO_HOLE)
    assert h.pread(8192, 65536) == bytes(8192)
    h.cache(1024 * 1024, 0)
    h.flush()
    # Many requests in flight at once, completed out of order.
    bufs = [nbd.Buffer(4096) for i in range(64)]
    cookies = [h.aio_pread(b, 1024 * 1024 - i * 4096) for i, b in enumerate(bufs)]
    assert h.aio_in_flight() > 1
    while h.aio_in_flight() > 0:
        h.poll(-1)
    for i, (c, b) in enumerate(zip(cookies, bufs)):
        assert h.aio_command_completed(c)
        assert bytes(b.to_bytearray()) == h.pread(4096, 1024 * 1024 - i * 4096)
    h.shutdown()
print("ok")
`);
    assert.match(out, /^ok$/m);
    // The direct file view agrees with what the client saw.
    const file = await readFile(s.files.get('d')!);
    assert.is(file.toString('latin1', 12345, 12356), 'hello world');
    assert.ok(file.subarray(65536, 65536 + 8192).every((b) => b === 0));
  } finally {
    await s.stop();
  }
});

test('read-only export answers writes with EPERM', async () => {
  if (!(await requireTools('nbdsh'))) return;
  const s = await serve([{ name: 'ro', size: MiB, readOnly: true, content: Buffer.from('keep me') }]);
  try {
    const out = await nbdsh(`${prelude}
h = connect("${s.uri('ro')}", True, strict=False)
assert h.is_read_only()
assert not h.can_trim() and not h.can_zero() and not h.can_fua()
expect_errno(errno.EPERM, h.pwrite, b"overwrite", 0)
expect_errno(errno.EPERM, h.trim, 4096, 0)
expect_errno(errno.EPERM, h.zero, 4096, 0)
assert h.pread(7, 0) == b"keep me"
h.flush()
print("ok")
`);
    assert.match(out, /^ok$/m);
    assert.is((await readFile(s.files.get('ro')!)).toString('latin1', 0, 7), 'keep me');
  } finally {
    await s.stop();
  }
});

test('block status: holes and data, REQ_ONE, ranges', async () => {
  if (!(await requireTools('nbdsh'))) return;
  const content = Buffer.alloc(3 * 65536);
  pattern(65536, 3).copy(content, 65536); // data only in [64k, 128k)
  const s = await serve([{ name: 'sparse', size: MiB, zeroScan: true, content }]);
  try {
    const out = await nbdsh(`${prelude}
h = connect("${s.uri('sparse')}", True)
assert h.can_meta_context("base:allocation")
seen = []
def record(context, offset, entries, err):
    assert context == "base:allocation"
    seen.append((offset, list(entries)))
    return 0
h.block_status(1024 * 1024, 0, record)
HZ = nbd.STATE_HOLE | nbd.STATE_ZERO
assert seen == [(0, [65536, HZ, 65536, 0, 1024 * 1024 - 131072, HZ])], seen
seen.clear()
h.block_status(1024 * 1024, 0, record, nbd.CMD_FLAG_REQ_ONE)
assert seen == [(0, [65536, HZ])], seen
seen.clear()
# A range starting mid-extent, misaligned.
h.block_status(70000, 100000, record)
assert seen == [(100000, [31072, 0, 70000 - 31072, HZ])], seen
h.set_strict_mode(0)
expect_errno(errno.EINVAL, h.block_status, 4096, 1024 * 1024 - 1024, record)
# Writing data turns a hole into data.
h.pwrite(b"\\x01" * 4096, 8192)
seen.clear()
h.block_status(65536, 0, record)
assert seen == [(0, [8192, HZ, 4096, 0, 65536 - 12288, HZ])], seen
print("ok")
`);
    assert.match(out, /^ok$/m);
  } finally {
    await s.stop();
  }
});

test.run();
