// vagrant/Vagrantfile must not rot: Debian's vagrant validates it (no provider or plugin is
// installed here, so provider blocks are configuration only: --ignore-provider), with the
// machines LAZYBD_NODES asks for, every address in the lab's 198.18.0.0/15, and the lab token
// kept with Vagrant's state, not in the checkout.
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { runCommand } from './support/deploy-root.js';
import { requireTools } from './support/tools.js';

const VAGRANT_DIR = join(process.cwd(), 'vagrant');

/** `vagrant validate --ignore-provider --machine-readable` with its home and state in a temp dir. */
async function validate(dir: string, nodes?: string) {
  const env: NodeJS.ProcessEnv = { ...process.env, VAGRANT_HOME: join(dir, 'home'), VAGRANT_DOTFILE_PATH: join(dir, 'dot'), VAGRANT_CHECKPOINT_DISABLE: '1' };
  if (nodes === undefined) delete env.LAZYBD_NODES;
  else env.LAZYBD_NODES = nodes;
  const r = await runCommand('vagrant', ['validate', '--ignore-provider', '--machine-readable'], { env, cwd: VAGRANT_DIR, timeoutMs: 60_000 });
  const rows = r.stdout.split('\n').map((l) => l.split(','));
  return {
    ...r,
    machines: rows.filter((f) => f[2] === 'metadata' && f[3] === 'provider').map((f) => f[1]),
    warnings: rows.filter((f) => f[2] === 'ui' && (f[3] === 'warn' || f[3] === 'error')).map((f) => f.slice(4).join(',')).filter((m) => !/Ignoring provider config for validation/.test(m)),
  };
}

test('vagrant validate: registry, supernode and LAZYBD_NODES nodes, no warnings, token outside the checkout', async () => {
  if (!(await requireTools('vagrant'))) return;
  const dir = await mkdtemp(join(tmpdir(), 'lazybd-vagrant-'));
  try {
    const byDefault = await validate(dir);
    assert.is(byDefault.status, 0, byDefault.stdout + byDefault.stderr);
    assert.match(byDefault.stdout, /validated successfully/);
    assert.equal(byDefault.machines, ['registry', 'supernode', 'node1', 'node2']);
    assert.equal(byDefault.warnings, []);
    const token = join(dir, 'dot', 'lazybd-supernode.token');
    assert.is((await stat(token)).mode & 0o777, 0o600);
    assert.match(await readFile(token, 'utf8'), /^[0-9a-f]{48}\n$/);
    assert.not.ok(await stat(join(VAGRANT_DIR, '.vagrant')).catch(() => undefined), 'no state written into the checkout');

    const three = await validate(dir, '3');
    assert.is(three.status, 0, three.stdout + three.stderr);
    assert.equal(three.machines, ['registry', 'supernode', 'node1', 'node2', 'node3']);

    const none = await validate(dir, '0');
    assert.is.not(none.status, 0);
    assert.match(none.stdout + none.stderr, /LAZYBD_NODES must be 1\.\.244/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('every address in the Vagrantfile is in 198.18.0.0/15 (the netmask aside)', async () => {
  const text = await readFile(join(VAGRANT_DIR, 'Vagrantfile'), 'utf8');
  const addresses = [...text.matchAll(/\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\b/g)].map((m) => m[0]);
  assert.ok(addresses.length >= 3, addresses.join(' '));
  for (const a of addresses) {
    if (a === '255.255.0.0') continue;
    assert.match(a, /^198\.1[89]\./, `${a} is outside the lab range`);
  }
  assert.match(text, /"198\.18\.1\.#\{10 \+ i\}"/, 'nodes on 198.18.1.11 and up');
});

test.run();
