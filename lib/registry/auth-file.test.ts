import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { authFilePaths, findCredentials } from './auth-file.js';
import { AuthFileError } from './errors.js';

let dir: string;
test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lazybd-auth-file-'));
});
test.after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const b64 = (s: string) => Buffer.from(s).toString('base64');

async function authFile(name: string, auths: Record<string, unknown>): Promise<string> {
  const path = join(dir, name);
  await mkdir(join(path, '..'), { recursive: true });
  await writeFile(path, JSON.stringify({ auths }));
  return path;
}

test('search order: $REGISTRY_AUTH_FILE replaces the podman files; docker config last', () => {
  assert.equal(authFilePaths({ XDG_RUNTIME_DIR: '/run/user/7' }, '/home/u'), [
    '/run/user/7/containers/auth.json',
    '/home/u/.config/containers/auth.json',
    '/home/u/.docker/config.json',
  ]);
  assert.equal(authFilePaths({ REGISTRY_AUTH_FILE: '/x/auth.json', DOCKER_CONFIG: '/d' }, '/home/u'), ['/x/auth.json', '/d/config.json']);
});

test('decodes auths[host].auth; passwords may contain colons', async () => {
  const path = await authFile('a.json', { 'reg.example:5000': { auth: b64('alice:pa:ss') } });
  assert.equal(await findCredentials('reg.example:5000', undefined, [path]), { username: 'alice', password: 'pa:ss' });
  assert.is(await findCredentials('other.example', undefined, [path]), undefined);
});

test('keys with a scheme or /v1/ path match the bare host; the most specific namespace key wins', async () => {
  const path = await authFile('b.json', {
    'https://reg.example/v1/': { auth: b64('hosty:1') },
    'reg.example/team': { auth: b64('teamy:2') },
    'reg.example/team/app': { auth: b64('appy:3') },
  });
  assert.is((await findCredentials('reg.example', 'other', [path]))?.username, 'hosty');
  assert.is((await findCredentials('reg.example', 'team/lib', [path]))?.username, 'teamy');
  assert.is((await findCredentials('reg.example', 'team/app', [path]))?.username, 'appy');
  assert.is((await findCredentials('reg.example', 'teamwork', [path]))?.username, 'hosty', 'a namespace matches whole path components only');
});

test('the first file with an entry wins; missing files are skipped', async () => {
  const first = await authFile('c1.json', { 'x.io': { auth: b64('one:1') } });
  const second = await authFile('c2.json', { 'x.io': { auth: b64('two:2') }, 'y.io': { auth: b64('why:3') } });
  const paths = [join(dir, 'missing.json'), first, second];
  assert.is((await findCredentials('x.io', undefined, paths))?.username, 'one');
  assert.is((await findCredentials('y.io', undefined, paths))?.username, 'why');
});

test('malformed files are coded errors', async () => {
  const path = join(dir, 'bad.json');
  await writeFile(path, '{not json');
  try {
    await findCredentials('x.io', undefined, [path]);
    assert.unreachable();
  } catch (e) {
    assert.instance(e, AuthFileError);
    assert.is((e as AuthFileError).code, 'E_REGISTRY_AUTH_FILE');
  }
  const noColon = await authFile('d.json', { 'x.io': { auth: b64('nocolon') } });
  try {
    await findCredentials('x.io', undefined, [noColon]);
    assert.unreachable();
  } catch (e) {
    assert.instance(e, AuthFileError);
  }
});

test.run();
