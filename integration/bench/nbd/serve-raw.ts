// Serves a raw file over NBD on a unix socket until SIGTERM/SIGINT (benchmark target).
// Usage: node dist/integration/bench/nbd/serve-raw.js <file> <socket> [export-name]
import { RawFileDevice } from '../../../lib/device/raw-file-device.js';
import { NbdServer } from '../../../lib/nbd/server.js';

const [file, path, name = 'bench'] = process.argv.slice(2);
if (!file || !path) {
  console.error('usage: serve-raw.js <file> <socket> [export-name]');
  process.exit(2);
}
const device = await RawFileDevice.open(file);
const server = new NbdServer({ exports: [{ name, device }], defaultExport: name });
await server.listen({ path });
console.log(`serving ${file} as '${name}' on ${path}`);
const stop = async () => {
  await server.close();
  await device.close();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
