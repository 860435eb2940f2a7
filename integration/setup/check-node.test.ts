// The set-up's first step: integration/setup/check-node.sh (run first by install-deps.sh) refuses a
// missing or old node, or a missing npm, in one line. Fake `node`/`npm` on PATH stand in for
// Debian 12's own nodejs 18; nothing here installs anything.
import { execFile } from 'node:child_process';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { MIN_NODE_MAJOR } from '../../lib/cli/node-version.js';
import { withTempDir } from '../support/cli.js';

interface Run {
  status: number;
  stdout: string;
  stderr: string;
}

function bash(script: string, path: string): Promise<Run> {
  return new Promise((resolve) => {
    execFile('/bin/bash', [script], { env: { PATH: path } }, (err, stdout, stderr) => {
      resolve({ status: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

/** A directory holding the given executables, each a shell script. */
async function fakeBin(dir: string, tools: Record<string, string>): Promise<string> {
  for (const [name, body] of Object.entries(tools)) {
    await writeFile(join(dir, name), `#!/bin/sh\n${body}\n`);
    await chmod(join(dir, name), 0o755);
  }
  return dir;
}

const fakeNode = (version: string) => ({ node: `echo ${version}`, npm: 'exit 0' });
const tooOld = (found: string) => `lazybd: Node.js >= 20 is required (found ${found}); see README "Prerequisites"\n`;

test('check-node.sh: an old node fails with one line and exit 1', async () => {
  for (const version of ['v18.19.0', 'v18.20.4', 'v19.9.0', 'v8.17.0']) {
    await withTempDir(async (dir) => {
      const r = await bash('integration/setup/check-node.sh', await fakeBin(dir, fakeNode(version)));
      assert.is(r.status, 1, version);
      assert.is(r.stderr, tooOld(version));
      assert.is(r.stdout, '');
    });
  }
});

test('check-node.sh: no node, an unreadable version, or no npm each fail with one line', async () => {
  const cases: [Record<string, string>, string][] = [
    [{ npm: 'exit 0' }, 'lazybd: Node.js >= 20 is required (no node on PATH); see README "Prerequisites"\n'],
    [{ node: 'echo hello', npm: 'exit 0' }, 'lazybd: Node.js >= 20 is required (node --version printed "hello"); see README "Prerequisites"\n'],
    [{ node: 'exit 7', npm: 'exit 0' }, 'lazybd: Node.js >= 20 is required (node --version failed); see README "Prerequisites"\n'],
    [{ node: 'echo v20.20.2' }, 'lazybd: npm is required (no npm on PATH); see README "Prerequisites"\n'],
  ];
  for (const [tools, line] of cases) {
    await withTempDir(async (dir) => {
      const r = await bash('integration/setup/check-node.sh', await fakeBin(dir, tools));
      assert.is(r.status, 1, line);
      assert.is(r.stderr, line);
    });
  }
});

test('check-node.sh: node 20 or newer with npm passes silently, the real one too', async () => {
  for (const version of ['v20.0.0', 'v20.20.2', 'v22.11.0', 'v100.1.0']) {
    await withTempDir(async (dir) => {
      const r = await bash('integration/setup/check-node.sh', await fakeBin(dir, fakeNode(version)));
      assert.equal(r, { status: 0, stdout: '', stderr: '' }, version);
    });
  }
  const real = await bash('integration/setup/check-node.sh', process.env.PATH ?? '');
  assert.equal(real, { status: 0, stdout: '', stderr: '' });
});

test('install-deps.sh checks node before anything else', async () => {
  await withTempDir(async (dir) => {
    // Stand-ins that would show (and stop) any step after the check; the real apt never runs.
    const bin = await fakeBin(dir, { ...fakeNode('v18.19.0'), 'dpkg-query': 'echo REACHED-DPKG >&2; exit 3', 'apt-get': 'echo REACHED-APT >&2; exit 3' });
    const r = await bash('integration/setup/install-deps.sh', `${bin}:/usr/bin:/bin`);
    assert.is(r.status, 1);
    assert.is(r.stderr, tooOld('v18.19.0'));
  });
});

test('one minimum everywhere: package.json engines, check-node.sh, the CLI; npm enforces engines', async () => {
  const pkg = JSON.parse(await readFile('package.json', 'utf8')) as { engines: { node: string } };
  assert.is(pkg.engines.node, `>=${MIN_NODE_MAJOR}`);
  assert.match(await readFile('integration/setup/check-node.sh', 'utf8'), new RegExp(`^min=${MIN_NODE_MAJOR}$`, 'm'));
  assert.match(await readFile('.npmrc', 'utf8'), /^engine-strict=true$/m);
});

test.run();
