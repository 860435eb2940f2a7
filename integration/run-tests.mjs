// Runs every compiled test file (lib/**/*.test.js and integration/**/*.test.js under dist/)
// through uvu and closes with the one line CI reads: "N passed, N failed".
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const pattern = process.argv[2] ?? '\\.test\\.js$';
// The tests see none of this machine's per-user state: no registry logins (auth files are
// read by lazybd and skopeo when a test does not name its own), no image store, no runtime
// dir with status files, sockets or mount state of real daemons. Their own land here, with
// their temp dirs, and go with it, also when a killed test could not remove them.
const hostState = mkdtempSync(join(tmpdir(), 'lazybd-tests-'));
mkdirSync(join(hostState, 'tmp'));
const env = {
  ...process.env,
  TMPDIR: join(hostState, 'tmp'),
  XDG_RUNTIME_DIR: join(hostState, 'run'),
  XDG_DATA_HOME: join(hostState, 'data'),
  REGISTRY_AUTH_FILE: join(hostState, 'no-auth.json'),
  DOCKER_CONFIG: join(hostState, 'no-docker-config'),
};
delete env.LAZYBD_STORE;
// uvu leads its own process group, so everything the tests start stays in it.
const child = spawn(process.execPath, ['node_modules/uvu/bin.js', 'dist', pattern], {
  stdio: ['ignore', 'pipe', 'inherit'],
  env,
  detached: true,
});
// Stopping the runner stops the tests: uvu's children (registries, daemons) are killed by
// integration/support/processes.ts on the same signal.
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, () => child.kill(signal));
// However uvu ended (even SIGKILL, which no handler sees), nothing it started outlives it.
child.on('exit', () => {
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    // ESRCH: the group is already empty.
  }
});
let out = '';
child.stdout.on('data', (chunk) => {
  process.stdout.write(chunk);
  out += chunk.toString();
});
child.on('close', (code) => {
  try {
    rmSync(hostState, { recursive: true, force: true });
  } catch (e) {
    // Something still mounted there (a mount test that was killed): say so, never hide it.
    console.error(`could not remove ${hostState}: ${e.message}`);
  }
  const plain = out.replace(/\x1b\[[0-9;]*m/g, '');
  const num = (label) => Number((plain.match(new RegExp(`${label}:\\s*(\\d+)`)) ?? [])[1] ?? 0);
  const total = num('Total');
  const passed = num('Passed');
  const skipped = num('Skipped');
  let failed = total - passed - skipped;
  // A file that throws while loading is not counted by uvu; never let that look green.
  if (code !== 0 && failed === 0) failed = 1;
  console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
  process.exit(code === 0 && failed === 0 ? 0 : 1);
});
