// Every command line lazybd cannot act on is a one-line usage error (exit 2, E_USAGE) naming
// the problem, raised before the command does anything. The cases are generated from the
// command table, so a new command or option is covered the moment it is declared: the
// exhaustive matrix runs the parser in-process, and each command also runs through the
// real built CLI for a representative subset.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { helpDefault, positionalSlots, type CliSpec, type CommandSpec, type OptionSpec } from '../lib/cli/command-spec.js';
import { lazybdCli } from '../lib/cli/command-table.js';
import { hostPort, text, type ValueKind } from '../lib/cli/option-kinds.js';
import { parseCommandLine } from '../lib/cli/parse-command-line.js';
import { UsageError } from '../lib/cli/usage-error.js';
import { codecLine } from '../lib/format/chunk-codec.js';
import { fileIoLine } from '../lib/store/native-io.js';
import { LAZYBD_BIN, lazybd, withTempDir } from './support/cli.js';
import { spawnOwned } from './support/processes.js';

/** Malformed values of each value kind ('' and a missing value are checked for every option). */
const MALFORMED: Record<string, string[]> = {
  text: [],
  'chunk-size': ['3000', '2048', '33554432', '64k', '0x1000', '-4096', '4096.0', '1e4', 'big'],
  rate: ['-1', 'fast', '1e3', '0x10', 'Infinity', '16MB', '.5', '5.'],
  gib: ['-1', 'lots', '1e3', '10G', 'NaN'],
  seconds: ['0', '0.0', '-5', 'soon', '1e3', '30s'],
  'host-port': ['127.0.0.1', '127.0.0.1:65536', 'host:', 'host:port', ':', '1.2.3.4:5:6', '[::1]', '-1', '123456'],
  url: ['127.0.0.1:5100', 'ftp://h:1', 'http://h:1/v2/', 'http://h:1?ns=x', 'http://u:p@h:1', 'http://'],
  'registry-host': ['http://h:5000', 'h/repo', 'h:port', 'h:1:2'],
  count: ['0', '1.5', '-2', 'four'],
  'seconds-or-zero': ['-1', 'soon', '30s', '1e3'],
  mib: ['-1', 'lots', '1e3', '256M'],
  codec: ['gzip', 'zstd:0', 'zstd:20', 'zstd:03', 'lz4:1', 'ZSTD', 'zstd:', 'none:1'],
};

/** Well-formed values of each kind and what they become. */
const WELL_FORMED: Record<string, [string, unknown][]> = {
  text: [['x', 'x'], ['-', '-'], ['a b', 'a b']],
  'chunk-size': [['4096', 4096], ['65536', 65536], ['16777216', 16777216]],
  rate: [['0', 0], ['0.5', 0.5], ['16', 16], ['500', 500]],
  gib: [['0', 0], ['1.5', 1.5], ['10', 10]],
  seconds: [['0.1', 0.1], ['3', 3], ['30', 30]],
  url: [['http://127.0.0.1:5100', 'http://127.0.0.1:5100'], ['https://sn.example', 'https://sn.example'], ['http://[::1]:80/', 'http://[::1]:80/']],
  'registry-host': [['registry.example:5000', 'registry.example:5000'], ['127.0.0.1:5000', '127.0.0.1:5000'], ['quay.io', 'quay.io'], ['[::1]:5000', '[::1]:5000']],
  count: [['1', 1], ['4', 4], ['64', 64]],
  'seconds-or-zero': [['0', 0], ['0.5', 0.5], ['30', 30]],
  mib: [['0', 0], ['64', 64], ['1024', 1024]],
  codec: [['none', { codec: 'none' }], ['lz4', { codec: 'lz4' }], ['zstd', { codec: 'zstd', level: 3 }], ['zstd:19', { codec: 'zstd', level: 19 }]],
  'host-port': [['127.0.0.1:0', { host: '127.0.0.1', port: 0 }], ['10809', { host: '127.0.0.1', port: 10809 }], ['[::1]:80', { host: '::1', port: 80 }], ['localhost:65535', { host: 'localhost', port: 65535 }], [':80', { host: '127.0.0.1', port: 80 }]],
};

/** A value for each positional argument the table declares: absent files and images, a closed loopback registry. */
const ARGUMENTS: Record<string, (dir: string) => string> = {
  '<raw-image>': (dir) => join(dir, 'absent.raw'),
  '<source>': (dir) => join(dir, 'absent.qcow2'),
  '<name:tag>': () => 'nope:v1',
  '[name:tag]': () => 'nope:v2',
  '<new-name:tag>': () => 'new:v1',
  '<image>': () => 'nope:v1',
  '[image]': () => 'nope:v3',
  '<name>': () => 'vm1',
  '<out.raw>': (dir) => join(dir, 'out.raw'),
  '<upper-dir>': (dir) => join(dir, 'absent-upper'),
  '<registry-ref>': () => '127.0.0.1:9/nope:v1',
  '<mountpoint>': (dir) => join(dir, 'absent-mountpoint'),
  '<trace-file>': (dir) => join(dir, 'absent-trace.json'),
};

const SURPLUS = 'surplus-arg';
const words = (c: CommandSpec) => c.name.split(' ');
const optionsOf = (c: CommandSpec) => [...lazybdCli.globalOptions, ...c.options];
const valueKind = (o: OptionSpec) => (o.kind === 'flag' ? undefined : o.kind);
const slotsOf = (c: CommandSpec) => positionalSlots(c.args);
const argumentsOf = (c: CommandSpec, dir: string) => {
  const s = slotsOf(c);
  return [...s.required, ...s.optional].map((name) => ARGUMENTS[name]!(dir));
};
/** A command line every check must accept: the command and all its arguments. */
/** The options a command cannot run without (and those they need), with their examples. */
const requiredNames = (c: CommandSpec) => {
  const names = new Set(c.options.filter((o) => o.required).map((o) => o.name));
  for (const o of c.options) if (names.has(o.name) && o.requires) names.add(o.requires);
  return names;
};
const requiredOf = (c: CommandSpec) => c.options.flatMap((o) => (requiredNames(c).has(o.name) && o.kind !== 'flag' ? [`--${o.name}`, o.kind.example] : []));
/** A default as it would be typed (host-port defaults are objects). */
const base = (c: CommandSpec, dir = '/tmp/lazybd-strict') => [...words(c), ...argumentsOf(c, dir), ...requiredOf(c)];

function rejected(argv: string[], cli: CliSpec = lazybdCli): string {
  try {
    parseCommandLine(argv, cli);
  } catch (e) {
    assert.instance(e, UsageError, `lazybd ${argv.join(' ')}: ${(e as Error).message}`);
    assert.is((e as UsageError).code, 'E_USAGE');
    assert.is((e as UsageError).exitStatus, 2);
    assert.not.match((e as Error).message, /\n/, 'one line');
    return (e as Error).message;
  }
  throw new Error(`accepted: lazybd ${argv.join(' ')}`);
}

function accepted(argv: string[], cli: CliSpec = lazybdCli): { command: CommandSpec; args: unknown[]; opts: Record<string, unknown> } {
  let line;
  try {
    line = parseCommandLine(argv, cli);
  } catch (e) {
    throw new Error(`rejected: lazybd ${argv.join(' ')}: ${(e as Error).message}`);
  }
  if (line.kind !== 'run') throw new Error(`lazybd ${argv.join(' ')} asks for help`);
  return { command: line.command, args: line.args.slice(0, -1), opts: line.args.at(-1) as Record<string, unknown> };
}

/** Typical slips on a name: a dropped middle character, two middle characters swapped, the last one doubled. */
function typosOf(name: string): string[] {
  const m = Math.floor(name.length / 2);
  const typos = [name.slice(0, m) + name.slice(m + 1), name + name.at(-1)];
  if (name[m - 1] !== name[m]) typos.push(name.slice(0, m - 1) + name[m] + name[m - 1] + name.slice(m + 1));
  return typos;
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

test('the table is consistent: unique names, one kind per option name, test values for every kind and argument', () => {
  const kinds = new Map<string, string>();
  assert.is(new Set(lazybdCli.commands.map((c) => c.name)).size, lazybdCli.commands.length, 'command names are unique');
  for (const c of lazybdCli.commands) {
    const names = optionsOf(c).map((o) => o.name);
    assert.is(new Set(names).size, names.length, `${c.name}: an option is declared twice (or shadows a global one)`);
    for (const o of optionsOf(c)) {
      const kind = o.kind === 'flag' ? 'flag' : o.kind.name;
      // The first parse (to find the command) takes every command's options at once.
      assert.is(kinds.get(o.name) ?? kind, kind, `--${o.name} has one kind in every command`);
      kinds.set(o.name, kind);
      assert.ok(!(o.repeatable && o.kind === 'flag'), `--${o.name}: a flag cannot repeat`);
      const v = valueKind(o);
      if (v) {
        assert.ok(v.name in MALFORMED && v.name in WELL_FORMED, `kind ${v.name} (of --${o.name}) needs malformed and well-formed samples in this test`);
        if (o.default !== undefined) assert.equal(v.parse(String(helpDefault(o))), o.default, `--${o.name}: the default is a value of its kind`);
      }
    }
    const s = slotsOf(c);
    for (const a of [...s.required, ...s.optional]) assert.ok(a in ARGUMENTS, `argument ${a} (of ${c.name}) needs a sample value in this test`);
  }
});

test('value kinds: well-formed values parse to what they mean, malformed ones to nothing', () => {
  const used = new Map<string, ValueKind>();
  for (const o of [...lazybdCli.globalOptions, ...lazybdCli.commands.flatMap((c) => c.options)]) {
    const v = valueKind(o);
    if (v) used.set(v.name, v);
  }
  used.set(hostPort.name, hostPort);
  for (const [name, kind] of used) {
    for (const [t, value] of WELL_FORMED[name]!) assert.equal(kind.parse(t), value, `${name}: ${t}`);
    for (const t of [...MALFORMED[name]!, '']) assert.is(kind.parse(t), undefined, `${name}: ${t} is malformed`);
    assert.ok(kind.parse(kind.example) !== undefined, `${name}: its example is well-formed`);
  }
});

for (const c of lazybdCli.commands) {
  test(`${c.name}: an unknown option is rejected and named`, () => {
    assert.is(rejected([...base(c), '--bogus-flag']), 'unknown option --bogus-flag');
    assert.is(rejected([...base(c), '--bogus-flag=3']), 'unknown option --bogus-flag');
    assert.is(rejected(['--bogus-flag', ...base(c)]), 'unknown option --bogus-flag', 'before the command too');
    assert.is(rejected([...base(c), '-x']), 'unknown option -x');
    assert.is(rejected([...base(c), '--no-bogus-flag']), 'unknown option --no-bogus-flag');
    // An option of another command is unknown here.
    const foreign = lazybdCli.commands.flatMap((x) => x.options).find((o) => !optionsOf(c).some((mine) => mine.name === o.name));
    if (foreign) assert.match(rejected([...base(c), `--${foreign.name}`]), new RegExp(`^unknown option --${escape(foreign.name)}(;|$)`));
  });

  test(`${c.name}: a near typo of each of its options names the option meant`, () => {
    for (const o of optionsOf(c)) {
      for (const typo of typosOf(o.name)) {
        assert.is(optionsOf(c).some((x) => x.name === typo), false, `${typo} is a typo, not an option`);
        const value = valueKind(o) ? [valueKind(o)!.example] : [];
        assert.is(rejected([...base(c), `--${typo}`, ...value]), `unknown option --${typo}; did you mean --${o.name}?`);
      }
      if (o.kind === 'flag') assert.is(rejected([...base(c), `--no-${typosOf(o.name)[0]}`]), `unknown option --no-${typosOf(o.name)[0]}; did you mean --no-${o.name}?`);
    }
    assert.is(rejected([...base(c), '-json']), 'unknown option -json; did you mean --json?');
  });

  test(`${c.name}: surplus arguments are rejected unless the last argument repeats; missing ones are named`, () => {
    const s = slotsOf(c);
    if (s.repeats) {
      const { opts } = accepted([...base(c), SURPLUS, 'more']);
      assert.equal(opts._, [SURPLUS, 'more']);
    } else {
      assert.match(rejected([...base(c), SURPLUS]), new RegExp(`^unexpected argument ${SURPLUS}; usage: lazybd ${escape(c.name)}`));
      assert.match(rejected([...base(c), SURPLUS, 'more']), new RegExp(`^unexpected arguments ${SURPLUS} more;`));
      assert.match(rejected([...base(c), '--', SURPLUS]), /^unexpected argument/);
    }
    for (let n = 0; n < s.required.length; n++) {
      assert.match(rejected([...base(c)].slice(0, words(c).length + n)), new RegExp(`^missing ${escape(s.required.slice(n).join(' '))}; usage:`));
    }
  });

  test(`${c.name}: every value option rejects a malformed, empty or missing value, and a repeat`, () => {
    for (const o of optionsOf(c)) {
      const v = valueKind(o);
      if (!v) continue;
      for (const bad of MALFORMED[v.name]!) {
        assert.is(rejected([...base(c), `--${o.name}`, bad]), `option --${o.name} takes ${v.expects}, not ${bad}`);
        assert.is(rejected([...base(c), `--${o.name}=${bad}`]), `option --${o.name} takes ${v.expects}, not ${bad}`);
      }
      const missing = `option --${o.name} needs a value`;
      assert.is(rejected([...base(c), `--${o.name}`]), missing, 'last');
      assert.is(rejected([...base(c), `--${o.name}=`]), missing, 'empty');
      assert.is(rejected([...base(c), `--${o.name}`, '--json']), missing, 'followed by an option');
      assert.is(rejected([...base(c), `--no-${o.name}`]), `option --${o.name} takes a value; there is no --no-${o.name}`);
      if (!o.repeatable) assert.is(rejected([...base(c), `--${o.name}`, v.example, `--${o.name}`, v.example]), `option --${o.name} given more than once`);
    }
  });

  test(`${c.name}: a flag given a value is rejected; --flag and --no-flag set it`, () => {
    for (const o of optionsOf(c)) {
      if (o.kind !== 'flag') continue;
      assert.is(rejected([...base(c), `--${o.name}=yes`]), `option --${o.name} takes no value (--${o.name}=yes)`);
      assert.is(rejected([...base(c), `--${o.name}=false`]), `option --${o.name} takes no value (--${o.name}=false)`);
      assert.is(rejected([...base(c), `--no-${o.name}=1`]), `option --no-${o.name} takes no value (--no-${o.name}=1)`);
      // A word after a flag is an argument, never the flag's value.
      if (!slotsOf(c).repeats) assert.match(rejected([...base(c), `--${o.name}`, 'false']), /^unexpected argument false;/);
      assert.is(accepted([...base(c), `--${o.name}`]).opts[o.name], true);
      assert.is(accepted([...base(c), `--no-${o.name}`]).opts[o.name], false);
      assert.is(accepted([...base(c), `--no-${o.name}`, `--${o.name}`]).opts[o.name], true, 'the last one wins');
    }
  });

  test(`${c.name}: a valid command line is accepted with typed values, defaults and its arguments in order`, () => {
    const required = requiredNames(c);
    const given = optionsOf(c).flatMap((o) => (required.has(o.name) ? [] : o.kind === 'flag' ? [`--${o.name}`] : [`--${o.name}`, o.kind.example]));
    const all = accepted([...base(c), ...given]);
    assert.is(all.command, c);
    assert.equal(all.args, argumentsOf(c, '/tmp/lazybd-strict'));
    for (const o of optionsOf(c)) {
      const expected = o.kind === 'flag' ? true : o.kind.parse(o.kind.example);
      assert.equal(all.opts[o.name], o.repeatable ? [expected] : expected, `--${o.name}`);
    }
    // Options go anywhere: before the command, between its words and arguments, as --name=value.
    const inline = optionsOf(c).flatMap((o) => (required.has(o.name) ? [] : o.kind === 'flag' ? [`--${o.name}`] : [`--${o.name}=${o.kind.example}`]));
    assert.equal(accepted([...inline, ...base(c)]).opts, all.opts);
    assert.equal(accepted([...words(c), ...given, ...requiredOf(c), ...argumentsOf(c, '/tmp/lazybd-strict')]).opts, all.opts);

    const bare = accepted(base(c));
    for (const o of optionsOf(c)) {
      if (required.has(o.name)) continue;
      assert.equal(bare.opts[o.name], o.default ?? (o.repeatable ? [] : undefined), `--${o.name} absent`);
    }
    assert.equal(bare.opts._, []);
    const s = slotsOf(c);
    if (s.optional.length > 0) {
      const short = accepted([...words(c), ...argumentsOf(c, '/tmp/lazybd-strict').slice(0, s.required.length)]);
      assert.equal(short.args.slice(s.required.length), s.optional.map(() => undefined), 'absent optional arguments are undefined');
    }
  });
}

test('unknown or missing commands are usage errors, with the command meant', () => {
  assert.is(rejected([]), 'no command given; lazybd --help lists them');
  assert.is(rejected(['--json']), 'no command given; lazybd --help lists them');
  assert.is(rejected(['frobnicate']), 'unknown command frobnicate');
  assert.is(rejected(['inspec', 'x:v1']), 'unknown command inspec; did you mean inspect?');
  assert.is(rejected(['trace']), 'unknown command trace; did you mean trace attach?');
  assert.is(rejected(['trace', 'atach', 'x:v1', 'f']), 'unknown command trace atach; did you mean trace attach?');
  assert.is(rejected(['cach', 'gc']), 'unknown command cach gc; did you mean cache gc?');
  for (const c of lazybdCli.commands) assert.is(accepted(base(c)).command, c);
});

test('several unknown options are all named, before any other problem', () => {
  const create = lazybdCli.commands.find((c) => c.name === 'create')!;
  assert.is(rejected([...base(create), '--squash', 'zstd', '--chunk-sise', '4096']), 'unknown option --squash; unknown option --chunk-sise; did you mean --chunk-size?');
});

test('help and version go to sade wherever they appear', () => {
  for (const argv of [['--help'], ['-h'], ['--version'], ['-v'], ['serve', '--help'], ['create', 'a', '--bogus', '-h']]) assert.equal(parseCommandLine(argv, lazybdCli), { kind: 'help' });
});

test('a repeatable option collects every value in order, [] when absent; each value is checked', () => {
  const cli: CliSpec = {
    globalOptions: lazybdCli.globalOptions,
    commands: [
      {
        name: 'peers',
        args: '<name>',
        describe: 'test',
        options: [
          { name: 'peer', kind: hostPort, help: 'repeatable', repeatable: true },
          { name: 'tag', kind: text, help: 'repeatable', repeatable: true },
        ],
        run: async () => undefined,
      },
    ],
  };
  const { opts } = accepted(['peers', 'n', '--peer', '127.0.0.1:1', '--tag=a', '--peer', '2', '--tag', 'b'], cli);
  assert.equal(opts.peer, [{ host: '127.0.0.1', port: 1 }, { host: '127.0.0.1', port: 2 }]);
  assert.equal(opts.tag, ['a', 'b']);
  assert.equal(accepted(['peers', 'n'], cli).opts.peer, []);
  assert.is(rejected(['peers', 'n', '--peer', '1', '--peer', 'x:y'], cli), `option --peer takes ${hostPort.expects}, not x:y`);
  assert.is(rejected(['peers', 'n', '--peer'], cli), 'option --peer needs a value');
  assert.is(rejected(['peers', 'n', '--pear', '1'], cli), 'unknown option --pear; did you mean --peer?');
});

// The real CLI, spawned: a representative case of each kind per command.

const SPAWN_TIMEOUT_MS = 30_000;
const usageLine = (message: string) => `lazybd: ${message} (E_USAGE)\n`;

for (const c of lazybdCli.commands) {
  test(`lazybd ${c.name} (spawned): an unknown option and a malformed value or surplus argument exit 2 before any work; a valid line is not a usage error`, async () => {
    await withTempDir(async (dir) => {
      const store = join(dir, 'store');
      const env = { LAZYBD_STORE: store, XDG_RUNTIME_DIR: join(dir, 'run') };
      const run = (args: string[]) => lazybd(args, env, SPAWN_TIMEOUT_MS);
      const typed = optionsOf(c).find((o) => valueKind(o) && MALFORMED[valueKind(o)!.name]!.length > 0);
      const [unknown, second] = await Promise.all([
        run([...base(c, dir), '--bogus-flag']),
        typed ? run([...base(c, dir), `--${typed.name}`, MALFORMED[valueKind(typed)!.name]![0]!]) : run([...base(c, dir), SURPLUS]),
      ]);
      assert.is(unknown.status, 2);
      assert.is(unknown.stderr, usageLine('unknown option --bogus-flag'));
      if (typed) {
        assert.is(second.status, 2);
        assert.is(second.stderr, usageLine(`option --${typed.name} takes ${valueKind(typed)!.expects}, not ${MALFORMED[valueKind(typed)!.name]![0]}`));
      } else if (slotsOf(c).repeats) {
        assert.not.match(second.stderr, /E_USAGE/, `a second ${c.args} is taken: ${second.stderr}`);
      } else {
        assert.is(second.status, 2);
        assert.match(second.stderr, new RegExp(`^lazybd: unexpected argument ${SURPLUS}; usage: lazybd ${escape(c.name)}.* \\(E_USAGE\\)\\n$`));
      }
      assert.is(existsSync(store), false, 'rejected command lines did not open (create) the store');
      // Numeric and address options with their examples (text options could name files a command would use),
      // and the text options the command requires or the others need.
      const required = requiredNames(c);
      const needed = new Set(optionsOf(c).flatMap((o) => (o.requires ? [o.requires] : [])));
      const valid = [...base(c, dir), ...optionsOf(c).flatMap((o) => (o.kind !== 'flag' && !required.has(o.name) && (o.kind !== text || needed.has(o.name)) ? [`--${o.name}`, o.kind.example] : []))];
      if (c.daemon) {
        // A server: it starts (and is stopped with SIGTERM), or fails later with another coded error.
        const proc = spawnOwned(process.execPath, [LAZYBD_BIN, ...valid], { env: { ...process.env, ...env } });
        await new Promise((r) => setTimeout(r, 1500));
        const running = proc.child.exitCode === null;
        await proc.stop();
        assert.ok(running || /\((E_[A-Z0-9_]+|E[A-Z]+)\)\n$/.test(proc.output()), `lazybd ${valid.join(' ')}: ${proc.output()}`);
        assert.not.match(proc.output(), /E_USAGE/, `lazybd ${valid.join(' ')}: ${proc.output()}`);
        return;
      }
      const ok = await run(valid);
      // It succeeds, or fails later with another coded error (absent image, file, mountpoint; closed registry port).
      assert.ok(ok.status === 0 || /^lazybd: .* \((E_[A-Z0-9_]+|E[A-Z]+)\)\n$/.test(ok.stderr), `lazybd ${valid.join(' ')}: status ${ok.status}, ${ok.stderr}`);
      assert.not.match(ok.stderr, /E_USAGE/, `lazybd ${valid.join(' ')}: ${ok.stderr}`);
    });
  });
}

test('lazybd (spawned): the examples of issue 8, --json errors, --help and --version', async () => {
  await withTempDir(async (dir) => {
    const env = { LAZYBD_STORE: join(dir, 'store'), XDG_RUNTIME_DIR: join(dir, 'run') };
    const run = (args: string[]) => lazybd(args, env, SPAWN_TIMEOUT_MS);
    const [create, serve, inspect, json, help, serveHelp, supernodeHelp, version, pureVersion, none] = await Promise.all([
      run(['create', join(dir, 'x.raw'), 'x:1', '--chunk-sise', '4096']),
      run(['serve', 'x:1', '--bogus-flag']),
      run(['inspect', 'x:1', 'extra']),
      run(['images', '--json', '--jsno']),
      run(['--help']),
      run(['serve', '--help']),
      run(['supernode', '--help']),
      run(['--version']),
      lazybd(['--version'], { ...env, LAZYBD_NATIVE: '0', LAZYBD_NATIVE_CODECS: '0' }, SPAWN_TIMEOUT_MS),
      run([]),
    ]);
    assert.is(create.status, 2);
    assert.is(create.stderr, usageLine('unknown option --chunk-sise; did you mean --chunk-size?'));
    assert.is(serve.status, 2);
    assert.is(serve.stderr, usageLine('unknown option --bogus-flag'));
    assert.is(inspect.status, 2);
    assert.is(inspect.stderr, usageLine('unexpected argument extra; usage: lazybd inspect <name:tag> [options]'));
    assert.is(json.status, 2);
    assert.equal(JSON.parse(json.stdout), { error: { code: 'E_USAGE', message: 'unknown option --jsno; did you mean --json?' } });
    assert.is(help.status, 0);
    for (const c of lazybdCli.commands) assert.match(help.stdout, new RegExp(`\\n    ${escape(c.name)} `));
    assert.is(serveHelp.status, 0);
    for (const o of optionsOf(lazybdCli.commands.find((c) => c.name === 'serve')!)) assert.match(serveHelp.stdout, new RegExp(`--${escape(o.name)} `));
    assert.match(serveHelp.stdout, /lazybd serve \[image\]\.\.\. \[options\]/);
    assert.match(supernodeHelp.stdout, /--listen .*\(default 127\.0\.0\.1:5100\)/, 'a HOST:PORT default is shown as one');
    assert.is(version.status, 0);
    // The next lines name the file I/O backend and the codecs this environment loads (the same as this process).
    assert.is(version.stdout, `lazybd, 0.1.0\n${fileIoLine()}\n${codecLine()}\n`);
    assert.match(version.stdout, /\nfile I\/O: (native \(lseek SEEK_DATA|pure \()/);
    assert.is(
      pureVersion.stdout,
      'lazybd, 0.1.0\nfile I/O: pure (LAZYBD_NATIVE=0)\ncodecs: zstd (encode unavailable, decode fzstd), lz4 (encode unavailable, decode pure)\n',
    );
    assert.is(none.status, 2);
    assert.is(none.stderr, usageLine('no command given; lazybd --help lists them'));
  });
});

test.run();
