#!/usr/bin/env node
// Prints what systemd would run for a service unit (see unit-file.ts), with every path taken
// from a root directory, after making the unit's directories and credentials there. The
// provisioning scripts use it in no-systemd mode (deploy/provision/common.sh), where the
// service is started by whoever runs them (the netns harness) instead of by systemd.
//
//   node run-unit.js --root DIR [--print | --print0] UNIT-FILE
//
// --print (default): one shell line, `umask …; cd /; exec env -i K=V … argv…`.
// --print0: NUL-terminated fields for a shell to exec without quoting: the umask (octal),
//   each K=V of the environment, `--`, then argv.
// UNIT-FILE is a path inside the root (e.g. /etc/systemd/system/lazybd.service).
import { parseArgs } from 'node:util';
import { prepareService, resolveService, shellLine, UnitFileError } from './unit-file.js';

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    options: { root: { type: 'string' }, print: { type: 'boolean' }, print0: { type: 'boolean' } },
    allowPositionals: true,
  });
  if (positionals.length !== 1 || !values.root) throw new UnitFileError('usage: run-unit.js --root DIR [--print | --print0] UNIT-FILE');
  const service = await resolveService(positionals[0]!, { root: values.root });
  await prepareService(service);
  if (values.print0) {
    const fields = [service.umask.toString(8).padStart(4, '0'), ...Object.entries(service.env).map(([k, v]) => `${k}=${v}`), '--', ...service.argv];
    process.stdout.write(fields.map((f) => `${f}\0`).join(''));
  } else {
    process.stdout.write(`${shellLine(service)}\n`);
  }
}

main().catch((e: Error) => {
  process.stderr.write(`run-unit: ${e.message}\n`);
  process.exit(e instanceof UnitFileError ? 2 : 1);
});
