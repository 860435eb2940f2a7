import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { undici } from './lazy-undici.js';

const run = promisify(execFile);

test('the parts are the package index’s own (a moved file fails here, not in a request)', async () => {
  const parts = await undici();
  const index = await import('undici');
  assert.is(parts.Agent, index.Agent);
  assert.is(parts.EnvHttpProxyAgent, index.EnvHttpProxyAgent);
  assert.is(parts.Client, index.Client);
  assert.is(parts.errors, index.errors);
});

test('in a fresh process: the index stays unloaded, and an Agent can request', async () => {
  // A real HTTP exchange on loopback, in a process that has loaded nothing else of undici.
  const script = `
    import { createServer } from 'node:http';
    import { createRequire } from 'node:module';
    import { undici } from ${JSON.stringify(new URL('./lazy-undici.js', import.meta.url).href)};
    const server = createServer((req, res) => res.end(req.method + ' ' + req.url));
    await new Promise((r) => server.listen(0, '127.0.0.1', r));
    const { Agent } = await undici();
    const agent = new Agent();
    const res = await agent.request({ origin: 'http://127.0.0.1:' + server.address().port, path: '/v2/x?y=1', method: 'GET' });
    const body = await res.body.text();
    const index = createRequire(import.meta.url).resolve('undici');
    console.log(JSON.stringify({ status: res.statusCode, body, indexLoaded: index in createRequire(import.meta.url).cache }));
    await agent.close();
    server.close();
  `;
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], { timeout: 20_000, cwd: new URL('../..', import.meta.url) });
  assert.equal(JSON.parse(stdout), { status: 200, body: 'GET /v2/x?y=1', indexLoaded: false });
});

test.run();
