import { randomBytes } from 'node:crypto';
import { readdir, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FileReadPool } from './file-read-pool.js';
import { withTempDir } from './test-support.js';

const openFds = async (): Promise<number> => (await readdir('/proc/self/fd')).length;

test('reads are right under concurrency, descriptors stay within capacity, all closed at the end', () =>
  withTempDir(async (dir) => {
    const files = await Promise.all(
      Array.from({ length: 20 }, async (_, i) => {
        const data = randomBytes(5000);
        await writeFile(join(dir, `f${i}`), data);
        return data;
      }),
    );
    const base = await openFds();
    for (const capacity of [0, 3]) {
      const pool = new FileReadPool(capacity, (key) => join(dir, key));
      let maxSeen = 0;
      await Promise.all(
        Array.from({ length: 400 }, async (_, k) => {
          const i = (k * 7) % 20;
          const out = Buffer.alloc(300);
          const n = await pool.read(`f${i}`, out, 0, 300, k % 4800);
          assert.is(n, Math.min(300, 5000 - (k % 4800)));
          assert.equal(out.subarray(0, n), files[i]!.subarray(k % 4800, (k % 4800) + n));
          maxSeen = Math.max(maxSeen, (await openFds()) - base);
        }),
      );
      const end = Buffer.alloc(100);
      assert.is(await pool.read('f0', end, 0, 100, 4950), 50, 'short at end of file');
      assert.ok((await openFds()) - base <= Math.max(capacity, 1) + 20, `descriptors held: ${maxSeen}`);
      pool.closeAll();
      await new Promise((r) => setTimeout(r, 50));
      assert.is(await openFds(), base, `capacity ${capacity}: no descriptor leaked`);
    }
  }),
);

test('forget drops a descriptor: a replaced file is read anew; a missing one rejects with ENOENT', () =>
  withTempDir(async (dir) => {
    const path = join(dir, 'x');
    await writeFile(path, 'old bytes');
    const pool = new FileReadPool(4, (key) => join(dir, key));
    const out = Buffer.alloc(9);
    await pool.read('x', out, 0, 9, 0);
    await unlink(path);
    await writeFile(path, 'new bytes');
    await pool.read('x', out, 0, 9, 0);
    assert.is(out.toString(), 'old bytes', 'still the open descriptor');
    pool.forget('x');
    await pool.read('x', out, 0, 9, 0);
    assert.is(out.toString(), 'new bytes');
    pool.forget('x');
    await unlink(path);
    try {
      await pool.read('x', out, 0, 9, 0);
      assert.unreachable();
    } catch (err) {
      assert.is((err as NodeJS.ErrnoException).code, 'ENOENT');
    }
    pool.closeAll();
  }),
);

test.run();
