// Runs every compiled test file (lib/**/*.test.js and integration/**/*.test.js under dist/)
// through uvu and closes with the one line CI reads: "N passed, N failed".
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const pattern = process.argv[2] ?? '\\.test\\.js$';
// The tests see none of this machine's per-user state: no registry logins (auth files are
// read by lazybd and skopeo when a test does not name its own), no image store, no runtime
// dir with status files, sockets or mount state of real daemons. Their own land here and
// go with it.
const hostState = mkdtempSync(join(tmpdir(), 'lazybd-tests-'));
const env = {
  ...process.env,
  XDG_RUNTIME_DIR: join(hostState, 'run'),
  XDG_DATA_HOME: join(hostState, 'data'),
  REGISTRY_AUTH_FILE: join(hostState, 'no-auth.json'),
  DOCKER_CONFIG: join(hostState, 'no-docker-config'),
};
delete env.LAZYBD_STORE;
const child = spawn(process.execPath, ['node_modules/uvu/bin.js', 'dist', pattern], {
  stdio: ['ignore', 'pipe', 'inherit'],
  env,
});
// Stopping the runner stops the tests: uvu's children (registries, daemons) are killed by
// integration/support/processes.ts on the same signal.
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, () => child.kill(signal));
let out = '';
child.stdout.on('data', (chunk) => {
  process.stdout.write(chunk);
  out += chunk.toString();
});
child.on('close', (code) => {
  rmSync(hostState, { recursive: true, force: true });
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
