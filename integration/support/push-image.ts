import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as assert from 'uvu/assert';
import { lazybd } from './cli.js';

/** What `lazybd create --json` reports of an image. */
export interface CreatedImage {
  layer: string;
  manifest: string;
}

/**
 * Writes `source` as a raw disk, makes it the image disk:v1 of the store <dir>/origin (`create`
 * with `createOptions`) and pushes it to `remote` over plain http.
 */
export async function createAndPush(dir: string, source: Buffer, remote: string, createOptions: string[] = []): Promise<CreatedImage> {
  const raw = join(dir, 'disk.raw');
  await writeFile(raw, source);
  const env = { LAZYBD_STORE: join(dir, 'origin') };
  const created = await lazybd(['create', raw, 'disk:v1', '--json', ...createOptions], env);
  assert.is(created.status, 0, created.stderr);
  const push = await lazybd(['push', 'disk:v1', remote, '--plain-http'], env);
  assert.is(push.status, 0, push.stderr);
  return JSON.parse(created.stdout) as CreatedImage;
}
