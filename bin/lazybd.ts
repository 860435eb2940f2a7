#!/usr/bin/env node
import '../lib/cli/require-node.js';
import sade from 'sade';
import { helpDefault, type OptionSpec } from '../lib/cli/command-spec.js';
import { lazybdCli } from '../lib/cli/command-table.js';
import { runCommandLine } from '../lib/cli/run-command.js';
import { codecLine } from '../lib/format/chunk-codec.js';
import { fileIoLine } from '../lib/store/native-io.js';

// Commands and options are declared in lib/cli/command-table.ts (add them there): sade gets
// them for --help and --version; the strict parser checks every command line against them.
// --version also says which file I/O backend and codecs loaded (native addons or pure TypeScript).
// The codec line loads the native codecs (~20 ms), so it is built only when the version is asked for.
const asksVersion = process.argv.slice(2).some((a) => a === '--version' || a === '-v');
const prog = sade('lazybd')
  .version(asksVersion ? `0.1.0\n${fileIoLine()}\n${codecLine()}` : '0.1.0')
  .describe('Lazily-loaded block-device images over NBD');
const register = (o: OptionSpec) => prog.option(`--${o.name}`, o.help, helpDefault(o));
lazybdCli.globalOptions.forEach(register);
for (const c of lazybdCli.commands) {
  prog.command(`${c.name} ${c.args}`.trim()).describe(c.describe);
  c.options.forEach(register);
}

await runCommandLine(process.argv.slice(2), lazybdCli, () => prog.parse(process.argv));
