import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { formatReference, InvalidReferenceError, manifestReference, parseReference, type RemoteReference } from './reference.js';

const D = `sha256:${'ab'.repeat(32)}`;

test('host:port/repo/name:tag is remote', () => {
  assert.equal(parseReference('localhost:5000/team/app:v1.2'), { kind: 'remote', registry: 'localhost:5000', repository: 'team/app', tag: 'v1.2' });
  assert.equal(parseReference('127.0.0.1:41234/x/y:t'), { kind: 'remote', registry: '127.0.0.1:41234', repository: 'x/y', tag: 't' });
});

test('remote without tag defaults to latest; port is not mistaken for a tag', () => {
  assert.equal(parseReference('localhost:5000/x'), { kind: 'remote', registry: 'localhost:5000', repository: 'x', tag: 'latest' });
  assert.equal(parseReference('localhost/x'), { kind: 'remote', registry: 'localhost', repository: 'x', tag: 'latest' });
  assert.equal(parseReference('registry.example.com/a/b/c'), { kind: 'remote', registry: 'registry.example.com', repository: 'a/b/c', tag: 'latest' });
});

test('digest references pin the manifest and keep an explicit tag', () => {
  const byDigest = parseReference(`ghcr.io/org/img@${D}`) as RemoteReference;
  assert.equal(byDigest, { kind: 'remote', registry: 'ghcr.io', repository: 'org/img', digest: D });
  assert.is(manifestReference(byDigest), D);
  const both = parseReference(`host.io/img:1@${D}`) as RemoteReference;
  assert.is(both.tag, '1');
  assert.is(manifestReference(both), D);
  assert.is(formatReference(both), `host.io/img:1@${D}`);
});

test('a first component without . or : (and not localhost) is a local store name', () => {
  assert.equal(parseReference('ubuntu'), { kind: 'local', name: 'ubuntu', tag: 'latest' });
  assert.equal(parseReference('team/app:dev'), { kind: 'local', name: 'team/app', tag: 'dev' });
  assert.is(formatReference(parseReference('team/app')), 'team/app:latest');
});

test('IPv6 registry hosts', () => {
  assert.equal(parseReference('[::1]:5000/x:y'), { kind: 'remote', registry: '[::1]:5000', repository: 'x', tag: 'y' });
});

for (const bad of ['', 'UPPER/case', 'a//b', 'name:', 'name:bad tag', `x@sha256:${'z'.repeat(64)}`, 'x@md5:abc', 'localhost:5000/', 'ho$t.io/x', `local@${D}`, 'a/-b', `${'a'.repeat(256)}`]) {
  test(`rejects ${JSON.stringify(bad.slice(0, 40))} with a coded error`, () => {
    try {
      parseReference(bad);
      assert.unreachable('should have thrown');
    } catch (e) {
      assert.instance(e, InvalidReferenceError);
      assert.is((e as InvalidReferenceError).code, 'E_REF_INVALID');
    }
  });
}

test.run();
