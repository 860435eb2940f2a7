// Runs every compiled test file (lib/**/*.test.js and integration/**/*.test.js under dist/)
// through uvu and closes with the one line CI reads: "N passed, N failed".
import { spawn } from 'node:child_process';

const pattern = process.argv[2] ?? '\\.test\\.js$';
const child = spawn(process.execPath, ['node_modules/uvu/bin.js', 'dist', pattern], {
  stdio: ['ignore', 'pipe', 'inherit'],
});
let out = '';
child.stdout.on('data', (chunk) => {
  process.stdout.write(chunk);
  out += chunk.toString();
});
child.on('close', (code) => {
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
