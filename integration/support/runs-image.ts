import { randomBytes, randomInt } from 'node:crypto';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import * as assert from 'uvu/assert';
import { lazybd } from './cli.js';

export interface RunsImage {
  /** The device's bytes. */
  source: Buffer;
  /** Where each run of random data starts on the device. */
  runs: number[];
  /** `create --json` of the image. */
  created: { layer: string; manifest: string };
}

/**
 * A sparse device of `size` bytes holding `count` runs of `runLength` random bytes, one at
 * the start of each of `count` equal stretches plus a random multiple of 4 KiB below 256 KiB,
 * made a lazybd image `ref` in the store `<dir>/origin` and pushed to `remote` (plain http).
 */
export async function pushRunsImage(dir: string, remote: string, o: { size: number; count: number; runLength: number; ref?: string }): Promise<RunsImage> {
  const source = Buffer.alloc(o.size);
  const stretch = o.size / o.count;
  if (stretch < o.runLength + (256 << 10)) throw new RangeError('runs do not fit their stretches');
  const runs = Array.from({ length: o.count }, (_, i) => i * stretch + randomInt(0, 64) * 4096);
  for (const at of runs) randomBytes(o.runLength).copy(source, at);
  const raw = join(dir, 'disk.raw');
  const h = await open(raw, 'w');
  await h.write(source);
  await h.close();
  const env = { LAZYBD_STORE: join(dir, 'origin') };
  const ref = o.ref ?? 'disk:v1';
  const created = await lazybd(['create', raw, ref, '--json'], env);
  assert.is(created.status, 0, created.stderr);
  const push = await lazybd(['push', ref, remote, '--plain-http'], env);
  assert.is(push.status, 0, push.stderr);
  return { source, runs, created: JSON.parse(created.stdout) as RunsImage['created'] };
}
