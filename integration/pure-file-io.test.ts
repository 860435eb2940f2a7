import { spawn } from 'node:child_process';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

/**
 * The suite runs on the native file I/O backend where it is built; the tests of every code path that
 * backend changes run here a second time with LAZYBD_NATIVE=0, so the pure-TypeScript path (what a
 * machine without a compiler gets) stays tested too.
 */
const PURE_PATTERN = '(store/native-io|source/file-read-pool|source/chunk-cache|source/lazy-layer|device/upper/(upper|data-writer)|nbd/send-buffer|format/layer)\\.test\\.js$';

test('the file I/O tests pass again with the pure backend forced (LAZYBD_NATIVE=0)', async () => {
  const { code, out } = await new Promise<{ code: number | null; out: string }>((resolve) => {
    const child = spawn(process.execPath, ['node_modules/uvu/bin.js', 'dist', PURE_PATTERN], {
      env: { ...process.env, LAZYBD_NATIVE: '0', FORCE_COLOR: '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (c) => (out += c));
    child.stderr.on('data', (c) => (out += c));
    child.on('close', (c) => resolve({ code: c, out: out.replace(/\x1b\[[0-9;]*m/g, '') }));
  });
  const count = (label: string) => Number(out.match(new RegExp(`${label}:\\s*(\\d+)`))?.[1] ?? -1);
  assert.is(code, 0, out.slice(-4000));
  assert.ok(count('Total') >= 10, `ran ${count('Total')} tests:\n${out.slice(-2000)}`);
  assert.is(count('Passed'), count('Total'), out.slice(-4000));
  assert.is(count('Skipped'), 0);
});

test.run();
