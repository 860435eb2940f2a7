import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { open, readFile, stat, type FileHandle } from 'node:fs/promises';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { rejects } from '../../integration/support/rejects.js';
import { withTempFile } from '../../integration/support/temp-file.js';
import { dataChecksum } from '../device/upper/data-checksum.js';
import { fileIoBackend, dataRegions, hashChunksOffThread, punchHole, readNow, writeBatchOffThread } from './native-io.js';

// These run on whichever backend loaded; integration/pure-file-io.test.ts runs them again with LAZYBD_NATIVE=0.
const native = fileIoBackend.kind === 'native';

const withFile = <T>(fn: (path: string, handle: FileHandle) => Promise<T>): Promise<T> => withTempFile('lazybd-native-io-', fn);

test('the backend is the one asked for: pure with LAZYBD_NATIVE=0; native in CI, where install-deps.sh brings the compiler', () => {
  if (process.env.LAZYBD_NATIVE === '0') assert.equal(fileIoBackend, { kind: 'pure', canPunchHoles: false, detail: 'LAZYBD_NATIVE=0' });
  else if (process.env.CI === 'true') assert.is(fileIoBackend.kind, 'native', `native addon expected in CI: ${fileIoBackend.detail}`);
  else if (!native) console.log(`  (native addon not loaded: ${fileIoBackend.detail}; testing the pure backend)`);
});

test('data regions: increasing, inside the file, and every non-zero byte lies in one; natively the holes are left out', () =>
  withFile(async (path, handle) => {
    const size = 64 * 1024 * 1024 + 1234; // an odd tail
    await handle.truncate(size);
    const runs = [[0, 4096], [5 << 20, 300_000], [17 << 20, 1 << 20], [size - 5000, 5000]] as const;
    for (const [at, length] of runs) await handle.write(randomBytes(length), 0, length, at);
    await handle.sync();
    const regions: [number, number][] = [];
    // Two at a time, so the batches have to continue where the last one ended.
    for (let batch = await dataRegions(handle.fd, 0, size, 2); batch.length > 0; batch = await dataRegions(handle.fd, batch[batch.length - 1]![1], size, 2)) {
      assert.ok(batch.length <= 2);
      regions.push(...batch);
    }
    let previousEnd = 0;
    for (const [start, end] of regions) {
      assert.ok(start >= previousEnd && start < end && end <= size, `region [${start}, ${end}) after ${previousEnd}`);
      previousEnd = end;
    }
    const bytes = await readFile(path);
    let r = 0;
    for (let i = 0; i < size; i += 512) {
      while (r < regions.length && regions[r]![1] <= i) r++;
      const inside = r < regions.length && regions[r]![0] <= i;
      if (!inside) assert.ok(bytes.subarray(i, i + 512).every((b) => b === 0), `non-zero byte near ${i} outside every region`);
    }
    const covered = regions.reduce((sum, [s, e]) => sum + e - s, 0);
    if (native) assert.ok(covered <= 4 << 20, `holes skipped: ${covered} bytes in regions`);
    else assert.equal(regions, [[0, size]], 'without SEEK_DATA the whole file is one region');
    assert.equal(await dataRegions(handle.fd, size, size, 8), []);
    if (native) assert.equal(await dataRegions(handle.fd, 0, size, 1000), regions, 'one batch finds the same regions');
    if (native) assert.ok((await dataRegions(handle.fd, 0, 5 << 20, 1000)).every(([s, e]) => s < (5 << 20) && e <= 5 << 20), 'clamped to the size asked');
    // A region search from inside a hole lands on the next data, or on none past the last.
    const [after] = await dataRegions(handle.fd, 1 << 20, size, 1);
    assert.ok(after && after[0] <= 5 << 20 && after[1] > 5 << 20);
  }),
);

test('punchHole frees the blocks of a range, which reads as zeroes, size and neighbours unchanged; pure changes nothing', () =>
  withFile(async (path, handle) => {
    const data = randomBytes(256 * 1024);
    await handle.write(data, 0, data.length, 0);
    await handle.sync();
    const before = await stat(path);
    const punched = await punchHole(handle.fd, 64 * 1024, 128 * 1024);
    await handle.sync();
    const after = await stat(path);
    const bytes = await readFile(path);
    assert.is(after.size, before.size);
    assert.is(punched, native);
    if (native) {
      assert.is(before.blocks - after.blocks, (128 * 1024) / 512, `blocks ${before.blocks} -> ${after.blocks}`);
      assert.ok(bytes.subarray(64 * 1024, 192 * 1024).equals(Buffer.alloc(128 * 1024)));
      assert.ok(bytes.subarray(0, 64 * 1024).equals(data.subarray(0, 64 * 1024)));
      assert.ok(bytes.subarray(192 * 1024).equals(data.subarray(192 * 1024)));
    } else {
      assert.ok(bytes.equals(data));
      assert.is(after.blocks, before.blocks);
    }
    assert.is(await punchHole(handle.fd, 0, 0), false, 'an empty range is nothing to do');
  }),
);

test('readNow: page-cache hits read at once, a page only on disk (written with O_DIRECT, dropped from the cache) is refused with -1, 0 at end of file', () =>
  withFile(async (path, handle) => {
    const data = randomBytes(1 << 20);
    await handle.write(data, 0, data.length, 0);
    const into = Buffer.alloc(70_000);
    const n = readNow(handle.fd, into, 100, 65_536, 4096);
    if (!native) {
      assert.is(n, -1, 'pure: always the thread pool');
      return;
    }
    assert.is(n, 65_536);
    assert.ok(into.subarray(100, 100 + n).equals(data.subarray(4096, 4096 + n)));
    assert.is(readNow(handle.fd, into, 0, 100, data.length), 0, 'end of file');
    assert.throws(() => readNow(handle.fd, into, 69_999, 2, 0), /past the end of the buffer/);
    assert.throws(() => readNow(-1, into, 0, 1, 0), (e: NodeJS.ErrnoException) => e.code === 'EBADF' && e.syscall === 'preadv2');
    // Bytes that never went through the page cache: nothing can be read without waiting for the disk.
    const cold = `${path}.cold`;
    // ext4 may still complete an O_DIRECT write that allocates blocks through the page cache (CI saw
    // the page cached once), so the file is synced and its pages then dropped (dd's nocache: fadvise DONTNEED).
    execFileSync('dd', ['if=/dev/urandom', `of=${cold}`, 'bs=1M', 'count=2', 'oflag=direct', 'conv=fsync', 'status=none']);
    execFileSync('dd', [`if=${cold}`, 'iflag=nocache', 'count=0', 'status=none']);
    const coldHandle = await open(cold, 'r');
    try {
      assert.is(readNow(coldHandle.fd, into, 0, 4096, 1 << 20), -1);
    } finally {
      await coldHandle.close();
    }
  }),
);

test('hashChunksOffThread: the SHA-256 of every whole chunk, in order; refuses a partial chunk; absent on pure', async () => {
  if (!native) {
    assert.is(hashChunksOffThread, null);
    return;
  }
  for (const chunkSize of [4096, 65536]) {
    const data = randomBytes(chunkSize * 37);
    const digests = await hashChunksOffThread!(data, chunkSize);
    assert.is(digests.length, 37 * 32);
    for (let i = 0; i < 37; i++) {
      const expected = createHash('sha256').update(data.subarray(i * chunkSize, (i + 1) * chunkSize)).digest();
      assert.ok(digests.subarray(i * 32, i * 32 + 32).equals(expected), `chunk ${i} of ${chunkSize}`);
    }
  }
  assert.throws(() => hashChunksOffThread!(randomBytes(5000), 4096), /whole chunks/);
});

test('writeBatchOffThread: every buffer lands at its position with the upper checksum of its bytes; errors stay per write; absent on pure', () =>
  withFile(async (path, handle) => {
    if (!native) {
      assert.is(writeBatchOffThread, null);
      return;
    }
    const sizes = [4096, 512, 1 << 20, 1, 65536, 0, 3000];
    const buffers = sizes.map((n) => randomBytes(n));
    // Out of order, one overlapping an earlier one (later in the batch wins), one far past the end.
    const positions = [8192, 0, 1 << 20, 5, 4096, 100, (64 << 20) + 7];
    const outcomes = await writeBatchOffThread!(handle.fd, buffers, positions, true);
    const expected = Buffer.alloc((64 << 20) + 7 + 3000);
    buffers.forEach((b, i) => b.copy(expected, positions[i]));
    assert.ok((await readFile(path)).equals(expected));
    assert.equal(outcomes, buffers.map((b) => ({ ok: true, checksum: dataChecksum(b) })));
    const plain = await writeBatchOffThread!(handle.fd, [buffers[0]!], [0], false);
    assert.equal(plain, [{ ok: true, checksum: 0 }]);

    const readOnly = await open(path, 'r');
    try {
      const failed = await writeBatchOffThread!(readOnly.fd, [buffers[0]!, buffers[1]!], [0, 4096], true);
      for (const o of failed) assert.ok(!o.ok && o.error.code === 'EBADF' && o.error.syscall === 'pwrite', JSON.stringify(o));
    } finally {
      await readOnly.close();
    }
    await rejects(writeBatchOffThread!(handle.fd, [buffers[0]!], [-1], true), RangeError, (e) => /non-negative safe integers/.test(e.message));
    await rejects(writeBatchOffThread!(handle.fd, ['x' as unknown as Buffer], [0], true), TypeError, (e) => /each buffer has the wrong type/.test(e.message));
  }),
);

test.run();
