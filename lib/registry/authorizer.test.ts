import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Authorizer, type TokenGrant } from './authorizer.js';

/** An authorizer with a hand-driven clock and a token endpoint that records what it was asked. */
function setup(options: { expiresInMs?: number; credentials?: { username: string; password: string } } = {}) {
  let clock = 1_000_000;
  let issued = 0;
  const asked: { url: URL; authorization: string | undefined }[] = [];
  const auth = new Authorizer({
    credentials: async () => options.credentials,
    now: () => clock,
    requestToken: async (url, authorization): Promise<TokenGrant> => {
      asked.push({ url, authorization });
      await new Promise((r) => setImmediate(r));
      return { token: `t${++issued}`, expiresInMs: options.expiresInMs ?? 60_000 };
    },
  });
  return { auth, asked, advance: (ms: number) => (clock += ms) };
}

const CHALLENGE = 'Bearer realm="https://auth.test/token?x=1",service="reg"';
const PULL = ['repository:a:pull'];

test('sends nothing until challenged, then a bearer token fetched with basic credentials', async () => {
  const { auth, asked } = setup({ credentials: { username: 'u', password: 'p' } });
  assert.is(await auth.header(PULL), undefined);
  assert.is(await auth.challenged(CHALLENGE, PULL, undefined), true);
  assert.is(await auth.header(PULL), 'Bearer t1');
  assert.is(asked.length, 1);
  assert.is(asked[0]!.url.href, 'https://auth.test/token?x=1&service=reg&scope=repository%3Aa%3Apull');
  assert.is(asked[0]!.authorization, `Basic ${Buffer.from('u:p').toString('base64')}`);
});

test('concurrent requests share one token fetch; tokens are cached per scope set', async () => {
  const { auth, asked } = setup();
  await auth.challenged(CHALLENGE, PULL, undefined);
  const headers = await Promise.all(Array.from({ length: 10 }, () => auth.header(PULL)));
  assert.equal(new Set(headers), new Set(['Bearer t1']));
  assert.is(await auth.header(['repository:a:pull,push']), 'Bearer t2');
  assert.is(await auth.header(PULL), 'Bearer t1');
  assert.is(asked.length, 2);
  assert.is(asked[0]!.authorization, undefined, 'anonymous without credentials');
});

test('renews after 90% of the lifetime, not before', async () => {
  const { auth, advance } = setup({ expiresInMs: 10_000 });
  await auth.challenged(CHALLENGE, PULL, undefined);
  assert.is(await auth.header(PULL), 'Bearer t1');
  advance(8_900);
  assert.is(await auth.header(PULL), 'Bearer t1');
  advance(200);
  assert.is(await auth.header(PULL), 'Bearer t2');
});

test('a refused token is dropped, but a newer one fetched meanwhile is kept', async () => {
  const { auth, asked } = setup();
  await auth.challenged(CHALLENGE, PULL, undefined);
  const stale = await auth.header(PULL);
  assert.is(await auth.challenged(CHALLENGE, PULL, stale), true);
  const fresh = await auth.header(PULL);
  assert.is(fresh, 'Bearer t2');
  // A second request that also carried the stale token reports its 401 late.
  assert.is(await auth.challenged(CHALLENGE, PULL, stale), true);
  assert.is(await auth.header(PULL), fresh);
  assert.is(asked.length, 2);
});

test('scopes a challenge adds (mount source) are requested too', async () => {
  const { auth, asked } = setup();
  const scopes = ['repository:dst:pull,push'];
  await auth.challenged(`${CHALLENGE},scope="repository:dst:pull,push repository:src:pull"`, scopes, undefined);
  await auth.header(scopes);
  assert.equal(asked[0]!.url.searchParams.getAll('scope'), ['repository:dst:pull,push', 'repository:src:pull']);
});

test('basic challenge: retry only when there are credentials not yet sent', async () => {
  const withCreds = setup({ credentials: { username: 'u', password: 'p' } }).auth;
  assert.is(await withCreds.challenged('Basic realm="r"', PULL, undefined), true);
  const header = await withCreds.header(PULL);
  assert.is(header, `Basic ${Buffer.from('u:p').toString('base64')}`);
  assert.is(await withCreds.challenged('Basic realm="r"', PULL, header), false, 'the password was wrong');
  assert.is(await setup().auth.challenged('Basic realm="r"', PULL, undefined), false);
  assert.is(await setup().auth.challenged('Digest realm="r"', PULL, undefined), false);
});

test('a failed token fetch is not cached', async () => {
  let calls = 0;
  const auth = new Authorizer({
    credentials: async () => undefined,
    requestToken: async () => {
      if (++calls === 1) throw new Error('token server down');
      return { token: 'ok', expiresInMs: 60_000 };
    },
  });
  await auth.challenged(CHALLENGE, PULL, undefined);
  await auth.header(PULL).then(() => assert.unreachable(), (e: Error) => assert.is(e.message, 'token server down'));
  assert.is(await auth.header(PULL), 'Bearer ok');
});

test.run();
