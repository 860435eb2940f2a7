import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as assert from 'uvu/assert';
import { lazybd } from './cli.js';

/** Writes `source` as a raw disk, makes it the image disk:v1 of the store <dir>/origin and pushes it to `remote` over plain http. */
export async function createAndPush(dir: string, source: Buffer, remote: string): Promise<void> {
  const raw = join(dir, 'disk.raw');
  await writeFile(raw, source);
  const env = { LAZYBD_STORE: join(dir, 'origin') };
  assert.is((await lazybd(['create', raw, 'disk:v1'], env)).status, 0);
  const push = await lazybd(['push', 'disk:v1', remote, '--plain-http'], env);
  assert.is(push.status, 0, push.stderr);
}
