import { createHash, randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import { open, readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { lazybd, withTempDir } from './support/cli.js';
import { FaultProxy } from './support/fault-proxy.js';
import { startRegistry } from './support/registry-server.js';
import { requireTools } from './support/tools.js';

const run = promisify(execFile);
const sha = async (p: string) => createHash('sha256').update(await readFile(p)).digest('hex');

/** 64 MiB sparse disk with 6 MiB of data in three runs. */
async function makeRaw(path: string): Promise<void> {
  const h = await open(path, 'w');
  await h.truncate(64 << 20);
  for (const at of [0, 20 << 20, 50 << 20]) await h.write(randomBytes(2 << 20), 0, 2 << 20, at);
  await h.close();
}

/** A registry with a counting/faulting proxy in front, a temp dir, and an image `disk:v1` in store `a`. */
async function withProxiedRegistry(fn: (proxy: FaultProxy, dir: string) => Promise<void>): Promise<void> {
  const registry = await startRegistry();
  const proxy = await FaultProxy.start(registry.host);
  try {
    await withTempDir(async (dir) => {
      await makeRaw(join(dir, 'disk.raw'));
      assert.is((await lazybd(['create', join(dir, 'disk.raw'), 'disk:v1'], { LAZYBD_STORE: join(dir, 'a') })).status, 0);
      await fn(proxy, dir);
    });
  } finally {
    await proxy.stop();
    await registry.stop();
  }
}

test('push, then a lazy pull moves only manifest, config and layer metadata', async () => {
  if (!(await requireTools('docker-registry'))) return;
  await withProxiedRegistry(async (proxy, dir) => {
    const a = { LAZYBD_STORE: join(dir, 'a') };
    const b = { LAZYBD_STORE: join(dir, 'b') };
    const push = await lazybd(['push', 'disk:v1', `${proxy.host}/lazy/disk:v1`, '--plain-http', '--json'], a);
    assert.is(push.status, 0, push.stderr);
    const pushed = JSON.parse(push.stdout);
    assert.equal(pushed.blobs.map((x: { outcome: string }) => x.outcome), ['uploaded', 'uploaded']);
    const again = JSON.parse((await lazybd(['push', 'disk:v1', `${proxy.host}/lazy/disk:v1`, '--plain-http', '--json'], a)).stdout);
    assert.equal(again.blobs.map((x: { outcome: string }) => x.outcome), ['exists', 'exists'], 'second push skips blobs the registry has');

    proxy.blobBytes = 0;
    const pull = await lazybd(['pull', `${proxy.host}/lazy/disk:v1`, 'disk:lazy', '--plain-http', '--json'], b);
    assert.is(pull.status, 0, pull.stderr);
    const pulled = JSON.parse(pull.stdout);
    assert.is(pulled.manifestDigest, pushed.manifestDigest);
    assert.is(pulled.layersComplete, 0);
    assert.ok(proxy.blobBytes < 16 << 10, `lazy pull moved ${proxy.blobBytes} blob bytes`);
    assert.ok(proxy.blobBytes < (64 << 20) / 100, 'metadata is under 1% of the image');
    assert.is((await readdir(join(dir, 'b', 'blobs', 'sha256'))).length, 2, 'only manifest and config blobs are local');

    const full = await lazybd(['pull', `${proxy.host}/lazy/disk:v1`, 'disk:full', '--plain-http', '--full', '--json'], b);
    assert.is(full.status, 0, full.stderr);
    assert.is((await lazybd(['export', 'disk:full', join(dir, 'full.raw')], b)).status, 0);
    assert.is(await sha(join(dir, 'full.raw')), await sha(join(dir, 'disk.raw')));
  });
});

test('a registry that drops connections for a moment: the pull tries again and succeeds; one that stays down fails, coded, after three rounds', async () => {
  if (!(await requireTools('docker-registry'))) return;
  await withProxiedRegistry(async (proxy, dir) => {
    const a = { LAZYBD_STORE: join(dir, 'a') };
    const b = { LAZYBD_STORE: join(dir, 'b') };
    assert.is((await lazybd(['push', 'disk:v1', `${proxy.host}/flaky/disk:v1`, '--plain-http'], a)).status, 0);
    proxy.mode = 'down';
    const pulling = lazybd(['pull', `${proxy.host}/flaky/disk:v1`, 'disk:flaky', '--plain-http', '--json'], b);
    setTimeout(() => (proxy.mode = 'pass'), 500);
    const pulled = await pulling;
    assert.is(pulled.status, 0, pulled.stderr);
    assert.match(pulled.stderr, /; trying again in 1 s\n/);
    assert.ok((await lazybd(['images', '--json'], b)).stdout.includes('disk:flaky'));

    proxy.mode = 'down';
    const started = Date.now();
    const failed = await lazybd(['pull', `${proxy.host}/flaky/disk:v1`, 'disk:gone', '--plain-http', '--json'], b);
    const seconds = (Date.now() - started) / 1000;
    assert.is(failed.status, 5, `registry errors exit 5: ${failed.stderr}`);
    assert.match(JSON.parse(failed.stdout).error.code, /^E_REGISTRY_/);
    assert.is(failed.stderr.match(/trying again in/g)?.length, 2, failed.stderr);
    assert.ok(seconds >= 3 && seconds < 15, `gave up after ${seconds} s (pauses of 1 and 2 s)`);
    assert.not.ok((await lazybd(['images', '--json'], b)).stdout.includes('disk:gone'));
  });
});

test('a registry that flips bits fails a full pull with a digest error and stores nothing bad', async () => {
  if (!(await requireTools('docker-registry'))) return;
  await withProxiedRegistry(async (proxy, dir) => {
    const a = { LAZYBD_STORE: join(dir, 'a') };
    const b = { LAZYBD_STORE: join(dir, 'b') };
    assert.is((await lazybd(['push', 'disk:v1', `${proxy.host}/bad/disk:v1`, '--plain-http'], a)).status, 0);
    proxy.mode = 'corrupt';
    const r = await lazybd(['pull', `${proxy.host}/bad/disk:v1`, 'x:v1', '--plain-http', '--full'], b);
    assert.is.not(r.status, 0);
    assert.match(r.stderr, /E_(DIGEST_MISMATCH|REGISTRY_DIGEST|[A-Z_]*DIGEST[A-Z_]*)/);
    assert.is((await lazybd(['images', '--json'], b)).stdout.includes('x:v1'), false);
  });
});

test('skopeo copies a lazybd image registry -> OCI layout -> registry keeping every digest', async () => {
  if (!(await requireTools('docker-registry', 'skopeo'))) return;
  const registry = await startRegistry();
  try {
    await withTempDir(async (dir) => {
      const a = { LAZYBD_STORE: join(dir, 'a') };
      await makeRaw(join(dir, 'disk.raw'));
      await lazybd(['create', join(dir, 'disk.raw'), 'disk:v1'], a);
      const pushed = JSON.parse((await lazybd(['push', 'disk:v1', `${registry.host}/sk/disk:v1`, '--plain-http', '--json'], a)).stdout);
      await run('skopeo', ['copy', '--src-tls-verify=false', `docker://${registry.host}/sk/disk:v1`, `oci:${join(dir, 'layout')}:disk`]);
      await run('skopeo', ['copy', '--dest-tls-verify=false', `oci:${join(dir, 'layout')}:disk`, `docker://${registry.host}/sk/copy:v1`]);
      const { stdout } = await run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${registry.host}/sk/copy:v1`]);
      assert.is(`sha256:${createHash('sha256').update(stdout).digest('hex')}`, pushed.manifestDigest, 'manifest digest kept');
      // The copy is a lazybd image our pull accepts, byte for byte the source.
      const b = { LAZYBD_STORE: join(dir, 'b') };
      assert.is((await lazybd(['pull', `${registry.host}/sk/copy:v1`, 'c:v1', '--plain-http', '--full'], b)).status, 0);
      assert.is((await lazybd(['export', 'c:v1', join(dir, 'c.raw')], b)).status, 0);
      assert.is(await sha(join(dir, 'c.raw')), await sha(join(dir, 'disk.raw')));
      // Our own store is an OCI layout skopeo reads too.
      await run('skopeo', ['copy', `oci:${join(dir, 'a')}:disk:v1`, `oci:${join(dir, 'layout2')}:d`]);
    });
  } finally {
    await registry.stop();
  }
});

test('basic auth: wrong password refused with a coded error, right one pushes', async () => {
  if (!(await requireTools('docker-registry', 'htpasswd'))) return;
  const registry = await startRegistry({ auth: { kind: 'htpasswd', users: { alice: 's3cret' } } });
  try {
    await withTempDir(async (dir) => {
      const a = { LAZYBD_STORE: join(dir, 'a') };
      const raw = join(dir, 'r.raw');
      const h = await open(raw, 'w');
      await h.write(randomBytes(65536));
      await h.close();
      await lazybd(['create', raw, 'r:v1'], a);
      const bad = await pushWithPassword(a, `${registry.host}/auth/r:v1`, 'wrong');
      assert.is.not(bad.status, 0);
      assert.match(bad.stderr, /E_REGISTRY_UNAUTHORIZED|E_UNAUTHORIZED/);
      const good = await pushWithPassword(a, `${registry.host}/auth/r:v1`, 's3cret');
      assert.is(good.status, 0, good.stderr);
    });
  } finally {
    await registry.stop();
  }
});

async function pushWithPassword(env: Record<string, string>, target: string, password: string): Promise<{ status: number; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, ['dist/bin/lazybd.js', 'push', 'r:v1', target, '--plain-http', '--username', 'alice', '--password-stdin'], { env: { ...process.env, ...env } }, (err, _out, stderr) =>
      resolve({ status: err ? ((err as { code?: number }).code ?? 1) : 0, stderr }),
    );
    child.stdin!.end(`${password}\n`);
  });
}

test.run();
