// `npm ci` / `npm install` runs this (package.json "install"): builds the native addon with node-gyp
// against the headers of the Node that runs it, never downloading anything. It never fails the
// install: without a compiler or headers lazybd uses its pure-TypeScript file I/O (lib/store/native-io.ts),
// and `lazybd --version` says which. LAZYBD_NATIVE=0 skips the build.
import { spawnSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const say = (line) => process.stderr.write(`lazybd native addon: ${line}\n`);

if (process.env.LAZYBD_NATIVE === '0') {
  say('skipped (LAZYBD_NATIVE=0); using pure TypeScript file I/O');
  process.exit(0);
}
if (process.platform !== 'linux') {
  say(`not built on ${process.platform} (Linux calls); using pure TypeScript file I/O`);
  process.exit(0);
}

// npm hands its own node-gyp to scripts; run by hand, use the one bundled with npm, else one on PATH.
const prefix = dirname(dirname(process.execPath));
const bundled = join(prefix, 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
const gyp = process.env.npm_config_node_gyp || (existsSync(bundled) ? bundled : '');
const command = gyp ? [process.execPath, gyp] : ['node-gyp'];
// Headers: npm's nodedir if set, else the running Node's own install prefix (Debian and nodesource put
// them in <prefix>/include/node). Never let node-gyp fetch a tarball: no network at install time.
const nodedir = process.env.npm_config_nodedir || (existsSync(join(prefix, 'include', 'node', 'node_api.h')) ? prefix : '');
if (!nodedir || !existsSync(join(nodedir, 'include', 'node', 'node_api.h'))) {
  say(`no Node headers found (nodedir ${nodedir || 'unset'}); using pure TypeScript file I/O`);
  process.exit(0);
}
const args = [...command.slice(1), 'rebuild', '--directory', here, `--nodedir=${nodedir}`, '--loglevel=error'];
const run = spawnSync(command[0], args, { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8', env: { ...process.env, npm_config_nodedir: nodedir } });
if (run.status === 0) {
  say('built (lseek SEEK_DATA/SEEK_HOLE, fallocate PUNCH_HOLE, preadv2 RWF_NOWAIT, SO_SNDBUF, batched pwrite and SHA-256 on the thread pool)');
} else {
  const why = run.error ? run.error.message : (run.stderr || run.stdout).trim().split('\n').filter(Boolean).slice(-3).join(' | ');
  say(`build failed, using pure TypeScript file I/O: ${why}`);
  rmSync(join(here, 'build'), { recursive: true, force: true });
}
process.exit(0);
