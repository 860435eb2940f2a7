import { randomBytes } from 'node:crypto';
import { mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { LAZYBD_BIN, lazybd } from './support/cli.js';
import { expectBytes, nbdRead } from './support/nbd-client.js';
import { spawnOwned, waitFor } from './support/processes.js';
import { startRegistry } from './support/registry-server.js';
import { makeSelfSignedCert, startTokenServer } from './support/token-server.js';
import { requireTools } from './support/tools.js';

/**
 * Token auth end to end through the CLI: credentials from a podman-style auth file, a
 * lazy serve whose token the registry stops accepting mid-run (the SOCI complaint):
 * reads after the expiry still succeed because the client renews the token.
 */
test('lazy serve under token auth keeps reading after its token expires', async () => {
  if (!(await requireTools('docker-registry', 'openssl', 'nbdsh'))) return;
  const dir = await mkdtemp(join(tmpdir(), 'lazybd-lazy-auth-'));
  const cert = await makeSelfSignedCert(dir);
  const tokens = await startTokenServer({ cert, users: { carol: 'opensesame' }, anonymous: 'nothing' });
  const registry = await startRegistry({ auth: { kind: 'token', tokenServer: tokens, certFile: cert.certFile } });
  try {
    const authFile = join(dir, 'auth.json');
    await writeFile(authFile, JSON.stringify({ auths: { [registry.host]: { auth: Buffer.from('carol:opensesame').toString('base64') } } }));
    const env = { LAZYBD_STORE: join(dir, 'origin'), REGISTRY_AUTH_FILE: authFile, XDG_RUNTIME_DIR: dir };
    const source = randomBytes(4 << 20);
    const raw = join(dir, 'disk.raw');
    const h = await open(raw, 'w');
    await h.write(source);
    await h.close();
    assert.is((await lazybd(['create', raw, 'disk:v1'], env)).status, 0);
    const remote = `${registry.host}/auth/disk:v1`;
    const push = await lazybd(['push', 'disk:v1', remote, '--plain-http'], env);
    assert.is(push.status, 0, push.stderr);
    // Without credentials the registry refuses even a pull.
    const anon = await lazybd(['pull', remote, '--plain-http'], { LAZYBD_STORE: join(dir, 'anon'), REGISTRY_AUTH_FILE: join(dir, 'none.json'), HOME: dir, XDG_RUNTIME_DIR: dir });
    assert.is(anon.status, 5, anon.stderr);
    assert.match(anon.stderr, /E_REGISTRY_(UNAUTHORIZED|DENIED)/);

    // Tokens now claim an hour but the registry takes them for 2 s only.
    Object.assign(tokens.lifetime, { expiresInS: 3600, acceptedForS: 2 });
    const sock = join(dir, 'nbd.sock');
    const daemon = spawnOwned(process.execPath, [LAZYBD_BIN, 'serve', remote, '--plain-http', '--socket', sock, '--prefetch-rate', '0'], {
      env: { ...process.env, ...env, LAZYBD_STORE: join(dir, 'node') },
    });
    try {
      await waitFor(() => /at nbd\+unix:/.test(daemon.output()) || daemon.child.exitCode !== null, 20_000, 'serve');
      const uri = /at (nbd\+unix:\S+)/.exec(daemon.output())?.[1];
      assert.ok(uri, daemon.output());
      assert.equal(await nbdRead(uri!, [[0, 65536]]), [expectBytes(source.subarray(0, 65536))]);
      const before = tokens.requests.length;
      await new Promise((r) => setTimeout(r, 3500));
      const late: [number, number] = [3 << 20, 65536];
      assert.equal(await nbdRead(uri!, [late]), [expectBytes(source.subarray(late[0], late[0] + late[1]))]);
      assert.is(tokens.requests.length, before + 1, 'the refused token was renewed once');
    } finally {
      await daemon.stop();
    }
  } finally {
    await registry.stop();
    await tokens.stop();
    await rm(dir, { recursive: true, force: true });
  }
});

test.run();
