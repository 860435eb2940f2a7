import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseChallenges } from './challenge.js';

test('bearer challenge as distribution sends it', () => {
  assert.equal(parseChallenges('Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push"'), [
    { scheme: 'bearer', params: { realm: 'https://auth.example/token', service: 'registry.example', scope: 'repository:a/b:pull,push' } },
  ]);
});

test('insufficient_scope error and space-separated scopes', () => {
  const [c] = parseChallenges('Bearer realm="http://127.0.0.1:1/t",service="s",scope="repository:x:pull repository:y:pull,push",error="insufficient_scope"');
  assert.is(c!.params.error, 'insufficient_scope');
  assert.is(c!.params.scope, 'repository:x:pull repository:y:pull,push');
});

test('several challenges, token values, escapes, odd spacing and case', () => {
  assert.equal(parseChallenges('Basic realm="a \\"quoted\\" realm" , BEARER Realm="https://x/t", Service = svc'), [
    { scheme: 'basic', params: { realm: 'a "quoted" realm' } },
    { scheme: 'bearer', params: { realm: 'https://x/t', service: 'svc' } },
  ]);
});

test('token68 and empty or garbage headers', () => {
  assert.equal(parseChallenges('Negotiate abc123=='), [{ scheme: 'negotiate', params: {} }]);
  assert.equal(parseChallenges(''), []);
  assert.equal(parseChallenges('Basic realm="unterminated'), [{ scheme: 'basic', params: {} }]);
});

test.run();
