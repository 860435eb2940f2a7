import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { TokenCheck, readTokenFile } from './token-file.js';

const good = 'a-token-of-twenty-chars';

async function tokenFile(text: string, mode: number): Promise<{ path: string; done: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'lazybd-token-'));
  const path = join(dir, 'token');
  await writeFile(path, text);
  await chmod(path, mode);
  return { path, done: () => rm(dir, { recursive: true, force: true }) };
}

test('tokens are the file lines without blanks and comments', async () => {
  const f = await tokenFile(`# supernode tokens\n\n${good}\n  second-token-0123456789  \n`, 0o600);
  try {
    assert.equal(await readTokenFile(f.path), [good, 'second-token-0123456789']);
  } finally {
    await f.done();
  }
});

for (const [what, text, mode, message] of [
  ['readable by group', `${good}\n`, 0o640, /readable by others \(mode 640\)/],
  ['readable by all', `${good}\n`, 0o644, /readable by others/],
  ['empty', '# nothing\n\n', 0o600, /holds no token/],
  ['a short token', 'short\n', 0o600, /at least 16 characters/],
] as const) {
  test(`a token file ${what} is refused with E_SUPERNODE_CONFIG`, async () => {
    const f = await tokenFile(text, mode);
    try {
      const err = await readTokenFile(f.path).then(() => undefined, (e: Error & { code?: string }) => e);
      assert.is(err?.code, 'E_SUPERNODE_CONFIG');
      assert.match(err!.message, message);
    } finally {
      await f.done();
    }
  });
}

test('a systemd credential may show group read (an ACL mask), nothing more; only in $CREDENTIALS_DIRECTORY', async () => {
  const f = await tokenFile(`${good}\n`, 0o440);
  const credentials = { CREDENTIALS_DIRECTORY: dirname(f.path) };
  try {
    assert.equal(await readTokenFile(f.path, credentials), [good]);
    const refused = (env: NodeJS.ProcessEnv) => readTokenFile(f.path, env).then(() => undefined, (e: Error & { code?: string }) => e?.code);
    assert.is(await refused({}), 'E_SUPERNODE_CONFIG', 'outside a credentials directory 0440 is readable by others');
    assert.is(await refused({ CREDENTIALS_DIRECTORY: tmpdir() }), 'E_SUPERNODE_CONFIG', 'another credentials directory');
    for (const mode of [0o460, 0o444, 0o450]) {
      await chmod(f.path, mode);
      assert.is(await refused(credentials), 'E_SUPERNODE_CONFIG', `mode ${mode.toString(8)} in the credentials directory`);
    }
    await chmod(f.path, 0o400);
    assert.equal(await readTokenFile(f.path, credentials), [good], 'ramfs: systemd chowns a 0400 file instead');
  } finally {
    await f.done();
  }
});

test('a missing token file is a config error naming it', async () => {
  const err = await readTokenFile('/nonexistent/lazybd.token').then(() => undefined, (e: Error & { code?: string }) => e);
  assert.is(err?.code, 'E_SUPERNODE_CONFIG');
  assert.match(err!.message, /\/nonexistent\/lazybd.token/);
});

test('only `Bearer <accepted token>` passes', () => {
  const check = new TokenCheck([good, 'second-token-0123456789']);
  assert.ok(check.accepts(`Bearer ${good}`));
  assert.ok(check.accepts('bearer second-token-0123456789'));
  for (const h of [undefined, '', good, `Basic ${good}`, `Bearer ${good}x`, `Bearer ${good.slice(1)}`, 'Bearer', `Bearer ${good} extra`]) assert.not.ok(check.accepts(h), String(h));
});

test.run();
