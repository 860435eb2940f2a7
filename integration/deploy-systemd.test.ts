// deploy/systemd/ as installed by deploy/install.sh: systemd-analyze finds nothing to say about
// either unit (and does flag a broken copy, so its silence means something), their hardening
// stays at "OK", and each unit's ExecStart — resolved from the installed unit and this test's
// env file the way systemd would, paths in the temp root — runs a daemon that works: lazybd.service
// serves an image over NBD and answers `lazybd status` on an owner-only control socket,
// lazybd-supernode.service answers a token holder and refuses anyone else; both exit cleanly on
// SIGTERM well within TimeoutStopSec. systemd is not PID 1 here, so nothing is started by it.
import { createHash, randomBytes } from 'node:crypto';
import { chmod, open, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { waitFor } from './support/processes.js';
import { addSystemUnits, installIntoTempRoot, runCommand, startService, UNIT_DIR, type InstalledRoot, type StartedService } from './support/deploy-root.js';
import { startRegistry, type RegistryServer } from './support/registry-server.js';
import { requireTools } from './support/tools.js';

const UNITS = ['lazybd.service', 'lazybd-supernode.service'];
const MiB = 1 << 20;
const TOKEN = 'deploy-test-token-0123456789abcdef';

let installed: InstalledRoot | undefined;
let registry: RegistryServer | undefined;

async function root(): Promise<InstalledRoot> {
  if (!installed) {
    installed = await installIntoTempRoot();
    await addSystemUnits(installed.root);
  }
  return installed;
}

test.after(async () => {
  await registry?.stop();
  await installed?.remove();
});

/** systemd-analyze's complaints about `unit`'s file (it says nothing when all is well). */
async function verify(r: InstalledRoot, unit: string): Promise<{ status: number | null; complaints: string[] }> {
  const v = await runCommand('systemd-analyze', ['verify', `--root=${r.root}`, join(UNIT_DIR, unit)]);
  const complaints = `${v.stdout}${v.stderr}`.split('\n').filter((l) => l.includes(unit.replace(/\.service$/, '')));
  return { status: v.status, complaints };
}

/** Stops with the unit's KillSignal and returns how it exited and how long it took. */
async function stopLikeSystemd(s: StartedService): Promise<{ code: number | null; signal: string | null; ms: number }> {
  const t0 = Date.now();
  s.process.child.kill(s.service.killSignal as NodeJS.Signals);
  await waitFor(() => s.process.child.exitCode !== null || s.process.child.signalCode !== null, s.service.timeoutStopMs, `${s.service.unitName} to stop within TimeoutStopSec`);
  return { code: s.process.child.exitCode, signal: s.process.child.signalCode, ms: Date.now() - t0 };
}

async function sha256(path: string): Promise<string> {
  return createHash('sha256').update(await readFile(path)).digest('hex');
}

/** A 16 MiB raw disk: random data in its first and third quarters, holes elsewhere. */
async function writeDisk(path: string): Promise<void> {
  const h = await open(path, 'w');
  try {
    await h.truncate(16 * MiB);
    await h.write(randomBytes(4 * MiB), 0, 4 * MiB, 0);
    await h.write(randomBytes(4 * MiB), 0, 4 * MiB, 8 * MiB);
  } finally {
    await h.close();
  }
}

test('systemd-analyze verify: both installed units are clean; a broken copy is not', async () => {
  if (!(await requireTools('systemd-analyze'))) return;
  const r = await root();
  for (const unit of UNITS) {
    const v = await verify(r, unit);
    assert.is(v.status, 0, `${unit}: ${v.complaints.join('\n')}`);
    assert.equal(v.complaints, [], unit);
    const sec = await runCommand('systemd-analyze', ['security', '--offline=yes', `--root=${r.root}`, '--threshold=25', join(UNIT_DIR, unit)]);
    assert.is(sec.status, 0, `${unit}: exposure above 2.5:\n${sec.stdout.split('\n').filter((l) => l.includes('✗') || l.includes('Overall')).join('\n')}`);
  }
  // The same check on a copy with a misspelt key, a bad value and a missing binary must complain.
  const good = await readFile(r.path(join(UNIT_DIR, 'lazybd.service')), 'utf8');
  const broken = good.replace('ProtectSystem=strict', 'ProtectSytem=strict').replace('UMask=0007', 'UMask=0999').replace('ExecStart=/usr/bin/lazybd', 'ExecStart=/usr/bin/lazybd-absent');
  await writeFile(r.path(join(UNIT_DIR, 'lazybd-broken.service')), broken);
  const v = await verify(r, 'lazybd-broken.service');
  assert.ok(v.complaints.some((l) => /Unknown key.*ProtectSytem/.test(l)), v.complaints.join('\n'));
  assert.ok(v.complaints.some((l) => /0999/.test(l)), v.complaints.join('\n'));
  assert.ok(v.status !== 0 && v.complaints.some((l) => /lazybd-absent.*not executable/.test(l)), v.complaints.join('\n'));
});

test('lazybd.service: the ExecStart serves an image over NBD, status on a 0600 control socket, clean SIGTERM', async () => {
  if (!(await requireTools('nbdinfo', 'nbdcopy'))) return;
  const r = await root();
  const disk = r.path('/disk.raw');
  await writeDisk(disk);
  const store = r.path('/var/lib/lazybd/store');
  const created = await runCommand(r.lazybd, ['create', disk, 'test/disk:v1', '--store', store]);
  assert.is(created.status, 0, created.stderr);
  // Quoting and word splitting as systemd does them: LAZYBD_SERVE_ARGS is "$VAR" in ExecStart.
  await writeFile(r.path('/etc/lazybd/lazybd.env'), '# the test\'s settings\nLAZYBD_SERVE_ARGS="test/disk:v1 --export disk --prefetch-rate 0"\n');

  const s = await startService(r.root, 'lazybd.service');
  try {
    assert.equal(s.service.argv, [
      r.lazybd, 'serve',
      '--socket', r.path('/run/lazybd/nbd.sock'),
      '--control', r.path('/run/lazybd/control.sock'),
      '--state-dir', r.path('/var/lib/lazybd/state'),
      '--store', store,
      '--cache-dir', r.path('/var/cache/lazybd'),
      'test/disk:v1', '--export', 'disk', '--prefetch-rate', '0',
    ]);
    assert.is(s.service.user, 'lazybd');
    const control = r.path('/run/lazybd/control.sock');
    let status = { status: null as number | null, stdout: '', stderr: '' };
    await waitFor(async () => {
      if (s.process.child.exitCode !== null) throw new Error(`lazybd.service exited ${s.process.child.exitCode}:\n${s.process.output()}`);
      status = await runCommand(r.lazybd, ['status', '--daemon', control, '--json']);
      return status.status === 0;
    }, 20_000, 'the daemon to answer lazybd status');
    const [daemon] = JSON.parse(status.stdout) as { pid: number; exports: { export: string; ref: string }[] }[];
    assert.is(daemon!.pid, s.process.child.pid, 'the process systemd would have started');
    assert.equal(daemon!.exports.map((e) => [e.export, e.ref]), [['disk', 'test/disk:v1']]);

    assert.is((await stat(control)).mode & 0o777, 0o600, 'control socket owner-only');
    assert.is((await stat(r.path('/run/lazybd/nbd.sock'))).mode & 0o777, 0o770, 'NBD socket: owner and group lazybd (UMask=0007)');
    assert.is((await stat(r.path('/run/lazybd'))).mode & 0o777, 0o750, 'RuntimeDirectoryMode=0750');
    assert.ok((await stat(r.path('/run/lazybd/daemons'))).isDirectory(), 'announced under XDG_RUNTIME_DIR=/run');

    const uri = `nbd+unix:///disk?socket=${r.path('/run/lazybd/nbd.sock')}`;
    const size = await runCommand('nbdinfo', ['--size', uri]);
    assert.is(size.status, 0, size.stderr);
    assert.is(Number(size.stdout.trim()), 16 * MiB);
    const copy = await runCommand('nbdcopy', [uri, r.path('/copy.raw')]);
    assert.is(copy.status, 0, copy.stderr);
    assert.is(await sha256(r.path('/copy.raw')), await sha256(disk), 'the image read over NBD is the source disk');

    const stopped = await stopLikeSystemd(s);
    assert.equal([stopped.code, stopped.signal], [0, null], s.process.output());
    assert.ok(stopped.ms < s.service.timeoutStopMs, `stopped in ${stopped.ms} ms`);
    assert.is(s.service.timeoutStopMs, 90_000);
    assert.not.ok(await stat(control).catch(() => undefined), 'control socket removed at stop');
  } finally {
    await s.process.stop();
  }
});

test('lazybd-supernode.service: the token (a 0400 credential) gets answers, no token gets 401, clean SIGTERM', async () => {
  if (!(await requireTools('docker-registry'))) return;
  const r = await root();
  registry = await startRegistry();
  const pushed = await runCommand(r.lazybd, ['push', 'test/disk:v1', `${registry.host}/test/disk:v1`, '--plain-http', '--store', r.path('/var/lib/lazybd/store')]);
  assert.is(pushed.status, 0, pushed.stderr);
  await writeFile(r.path('/etc/lazybd/supernode.token'), `# nodes of the test\n${TOKEN}\n`, { mode: 0o600 });
  await chmod(r.path('/etc/lazybd/supernode.token'), 0o600);
  await writeFile(r.path('/etc/lazybd/supernode.env'), `LAZYBD_SUPERNODE_LISTEN=127.0.0.1:0\nLAZYBD_SUPERNODE_ARGS="--upstream ${registry.host} --plain-http"\n`);

  const s = await startService(r.root, 'lazybd-supernode.service');
  try {
    const credential = r.path('/run/credentials/lazybd-supernode.service/token');
    assert.equal(s.service.argv, [
      r.lazybd, 'supernode',
      '--listen', '127.0.0.1:0',
      '--token-file', credential,
      '--cache-dir', r.path('/var/cache/lazybd-supernode'),
      '--upstream', registry.host, '--plain-http',
    ]);
    assert.is((await stat(credential)).mode & 0o777, 0o400);
    let url = '';
    await waitFor(() => {
      if (s.process.child.exitCode !== null) throw new Error(`lazybd-supernode.service exited ${s.process.child.exitCode}:\n${s.process.output()}`);
      url = /at (http:\/\/127\.0\.0\.1:\d+)/.exec(s.process.output())?.[1] ?? '';
      return url !== '';
    }, 20_000, 'the supernode to listen');
    const manifest = `${url}/v2/test/disk/manifests/v1?ns=${registry.host}`;
    const accept = 'application/vnd.oci.image.manifest.v1+json';
    const withToken = await fetch(manifest, { headers: { authorization: `Bearer ${TOKEN}`, accept } });
    assert.is(withToken.status, 200, await withToken.clone().text());
    assert.ok(((await withToken.json()) as { layers?: unknown[] }).layers?.length, 'a manifest with layers, from the registry behind');
    for (const headers of [{}, { authorization: 'Bearer not-the-token-0123456789' }, { authorization: `Basic ${TOKEN}` }] as Record<string, string>[]) {
      const refused = await fetch(manifest, { headers: { ...headers, accept } });
      await refused.body?.cancel();
      assert.is(refused.status, 401, JSON.stringify(headers));
    }
    const stopped = await stopLikeSystemd(s);
    assert.equal([stopped.code, stopped.signal], [0, null], s.process.output());
    assert.ok(stopped.ms < s.service.timeoutStopMs, `stopped in ${stopped.ms} ms`);
  } finally {
    await s.process.stop();
  }
});

test.run();
