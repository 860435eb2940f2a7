import { randomBytes } from 'node:crypto';
import { open, readFile, type FileHandle } from 'node:fs/promises';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { withTempFile } from '../../../integration/support/temp-file.js';
import { writeBatchOffThread } from '../../store/native-io.js';
import { dataChecksum } from './data-checksum.js';
import { dataWriter } from './data-writer.js';

// Runs on the loaded backend; integration/pure-file-io.test.ts runs it again with LAZYBD_NATIVE=0.

const withFile = (fn: (path: string, file: FileHandle) => Promise<void>): Promise<void> => withTempFile('lazybd-data-writer-', fn);

test('concurrent writes land as a model of the file says, each resolving with the checksum of its bytes', () =>
  withFile(async (path, file) => {
    const size = 4 << 20;
    const model = Buffer.alloc(size);
    const writer = dataWriter(file);
    for (let round = 0; round < 20; round++) {
      // Disjoint within a round (the upper's range lock keeps overlapping writes apart), any size and place.
      const slots = new Set<number>();
      const writes: { at: number; bytes: Buffer }[] = [];
      for (let i = 0; i < 1 + Math.floor(Math.random() * 64); i++) {
        const slot = Math.floor(Math.random() * 64);
        if (slots.has(slot)) continue;
        slots.add(slot);
        const length = 512 * (1 + Math.floor(Math.random() * 128));
        writes.push({ at: slot * 65536, bytes: randomBytes(length) });
      }
      const checksums = await Promise.all(writes.map((w) => writer.write(w.bytes, w.at)));
      writes.forEach((w, i) => {
        assert.is(checksums[i], dataChecksum(w.bytes));
        w.bytes.copy(model, w.at);
      });
    }
    const bytes = await readFile(path);
    assert.ok(bytes.equals(model.subarray(0, bytes.length)) && model.subarray(bytes.length).every((b) => b === 0));
  }),
);

test('natively, writes issued while a batch is in the thread pool go out together in the next one; a lone write goes at once', () =>
  withFile(async (_path, file) => {
    if (!writeBatchOffThread) return; // the pure backend writes one by one (the test above covers it)
    const batches: number[] = [];
    const real = writeBatchOffThread;
    const writer = dataWriter(file, (fd, buffers, positions, withChecksums) => {
      batches.push(buffers.length);
      return real(fd, buffers, positions, withChecksums);
    });
    await writer.write(randomBytes(4096), 0);
    assert.equal(batches, [1]);
    batches.length = 0;
    await Promise.all(Array.from({ length: 100 }, (_, i) => writer.write(randomBytes(4096), i * 4096)));
    assert.equal(batches, [1, 99], 'the first goes at once, the other 99 wait for it and share one batch');
    batches.length = 0;
    await Promise.all(Array.from({ length: 600 }, (_, i) => writer.write(randomBytes(512), i * 512)));
    assert.equal(batches, [1, 256, 256, 87], 'batches are bounded');
  }),
);

test('a failed write rejects with its errno error, and the writer goes on', () =>
  withFile(async (path, file) => {
    const readOnly = await open(path, 'r');
    try {
      const writer = dataWriter(readOnly);
      const results = await Promise.allSettled([writer.write(randomBytes(4096), 0), writer.write(randomBytes(4096), 4096)]);
      for (const r of results) assert.ok(r.status === 'rejected' && (r.reason as NodeJS.ErrnoException).code === 'EBADF', String(r));
    } finally {
      await readOnly.close();
    }
    const bytes = randomBytes(4096);
    assert.is(await dataWriter(file).write(bytes, 8192), dataChecksum(bytes));
  }),
);

test.run();
