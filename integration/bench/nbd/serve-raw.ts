// Serves a raw file over NBD on a unix socket until SIGTERM/SIGINT (benchmark target).
// Usage: node dist/integration/bench/nbd/serve-raw.js <file> <socket> [export-name] [--memory]
// --memory loads the file into RAM first, to measure the server without file I/O.
import type { BlockDevice } from '../../../lib/device/block-device.js';
import { RawFileDevice } from '../../../lib/device/raw-file-device.js';
import { NbdServer } from '../../../lib/nbd/server.js';
import { MemoryDevice } from './memory-device.js';

const args = process.argv.slice(2);
const memory = args.includes('--memory');
const [file, path, name = 'bench'] = args.filter((a) => a !== '--memory');
if (!file || !path) {
  console.error('usage: serve-raw.js <file> <socket> [export-name] [--memory]');
  process.exit(2);
}
const device: BlockDevice = memory ? await MemoryDevice.load(file) : await RawFileDevice.open(file);
const server = new NbdServer({ exports: [{ name, device }], defaultExport: name });
await server.listen({ path });
console.log(`serving ${file} as '${name}' on ${path}${memory ? ' from memory' : ''}`);
const stop = async () => {
  await server.close();
  await device.close();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
