// The unit-file emulation against systemd's documented rules (systemd.syntax(7), systemd.exec(5)
// EnvironmentFile=, systemd.service(5) "Command lines", systemd.unit(5) "Specifiers").
import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseEnvironmentFile, parseTimeSpan, parseUnitFile, prepareService, resolveService, splitWords, substituteVariables } from './unit-file.js';

test('unit syntax: sections, comments, continuation lines, an empty assignment resets a list', () => {
  const s = parseUnitFile(['# c', '[Service]', '; c', 'Environment=A=1', 'Environment=', 'Environment=B=2', 'ExecStart=/bin/x \\', '  # skipped', '  -a \\', '  -b', '[Install]', 'WantedBy=multi-user.target'].join('\n'));
  assert.equal(s.get('Service')!.get('Environment'), ['B=2']);
  assert.equal(s.get('Service')!.get('ExecStart'), ['/bin/x  -a  -b']);
  assert.equal(s.get('Install')!.get('WantedBy'), ['multi-user.target']);
});

test('words: quotes group and go, C escapes resolve', () => {
  assert.equal(splitWords(`a "b c" 'd "e"' f\\sg \\x41 "\\n"`), ['a', 'b c', 'd "e"', 'f g', 'A', '\n']);
  assert.equal(splitWords('  '), []);
  assert.throws(() => splitWords('"open'), /unbalanced/);
});

test('environment files: comments, quotes, escapes, stripped unquoted whitespace, no expansion', () => {
  const env = parseEnvironmentFile(['# comment', '; comment', '', 'A=plain  ', 'B = "two words" ', "C='$HOME \\n'", 'D="say \\"hi\\" \\$x"', 'E=con\\', 'tinued', 'F=', 'G=a\\ b'].join('\n'));
  assert.equal(env, [
    ['A', 'plain'],
    ['B', 'two words'],
    ['C', '$HOME \\n'],
    ['D', 'say "hi" $x'],
    ['E', 'continued'],
    ['F', ''],
    ['G', 'a b'],
  ]);
  assert.throws(() => parseEnvironmentFile('not an assignment'), /not KEY=VALUE/);
});

test('ExecStart substitution: "$VAR" splits into words (none when empty), "${VAR}" stays one word, $$ is $', () => {
  const env = { ARGS: '--a 1 "--b two"', ONE: 'x y', EMPTY: '' };
  assert.equal(substituteVariables(['/bin/p', '$ARGS', '--one', '${ONE}', 'pre${ONE}post', '$EMPTY', '$UNSET', '$$ARGS', 'cost$$'], env), ['/bin/p', '--a', '1', '--b two', '--one', 'x y', 'prex ypost', '$ARGS', 'cost$']);
});

test('time spans', () => {
  assert.is(parseTimeSpan('90'), 90_000);
  assert.is(parseTimeSpan('1min 30s'), 90_000);
  assert.is(parseTimeSpan('500ms'), 500);
  assert.throws(() => parseTimeSpan('soon'));
});

test('a service in a root: env files override Environment=, specifiers, directories and credentials, paths remapped', async () => {
  const root = await mkdtemp(join(tmpdir(), 'lazybd-unit-'));
  try {
    await mkdir(join(root, 'etc/systemd/system'), { recursive: true });
    await mkdir(join(root, 'etc/x'), { recursive: true });
    await mkdir(join(root, 'usr/bin'), { recursive: true });
    await writeFile(join(root, 'usr/bin/x'), '#!/bin/sh\n', { mode: 0o755 });
    await writeFile(join(root, 'etc/x/x.env'), 'ARGS="--flag --path /etc/x/data"\nLISTEN=1.2.3.4:5\n');
    await writeFile(join(root, 'etc/x/secret'), 'token\n', { mode: 0o600 });
    await writeFile(join(root, 'etc/passwd'), 'x:x:999:999::/var/lib/x:/usr/sbin/nologin\n');
    await writeFile(
      join(root, 'etc/systemd/system/x.service'),
      [
        '[Service]',
        'User=x',
        'UMask=0027',
        'Environment=LISTEN=127.0.0.1:1 "QUOTED=a b" ARGS=',
        'EnvironmentFile=-/etc/x/absent.env',
        'EnvironmentFile=/etc/x/x.env',
        'LoadCredential=tok:/etc/x/secret',
        'RuntimeDirectory=x',
        'RuntimeDirectoryMode=0750',
        'StateDirectory=x',
        'TimeoutStopSec=1min',
        'ExecStart=/usr/bin/x --listen ${LISTEN} --token %d/tok --sock /run/x/s.sock --state=/var/lib/x/st --unit %n --other /nonexistent/p --lit 100%% $ARGS',
      ].join('\n'),
    );
    const s = await resolveService('/etc/systemd/system/x.service', { root });
    assert.equal(s.argv, [
      join(root, 'usr/bin/x'),
      '--listen', '1.2.3.4:5',
      '--token', join(root, 'run/credentials/x.service/tok'),
      '--sock', join(root, 'run/x/s.sock'),
      `--state=${join(root, 'var/lib/x/st')}`,
      '--unit', 'x.service',
      '--other', '/nonexistent/p',
      '--lit', '100%',
      '--flag', '--path', join(root, 'etc/x/data'),
    ]);
    assert.is(s.umask, 0o027);
    assert.is(s.timeoutStopMs, 60_000);
    assert.is(s.env.QUOTED, 'a b');
    assert.is(s.env.USER, 'x');
    assert.is(s.env.RUNTIME_DIRECTORY, join(root, 'run/x'));
    assert.is(s.env.CREDENTIALS_DIRECTORY, join(root, 'run/credentials/x.service'));
    await prepareService(s);
    assert.is((await stat(join(root, 'run/x'))).mode & 0o777, 0o750);
    assert.is((await stat(join(root, 'var/lib/x'))).mode & 0o777, 0o755);
    assert.is((await stat(join(root, 'run/credentials/x.service/tok'))).mode & 0o777, 0o400);
    // Home exists in the root once StateDirectory= is made: remapped like any path it holds.
    assert.is((await resolveService('/etc/systemd/system/x.service', { root })).env.HOME, join(root, 'var/lib/x'));
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test('refused: several ExecStart= in a simple service, relative directories, unknown specifiers', async () => {
  const root = await mkdtemp(join(tmpdir(), 'lazybd-unit-'));
  try {
    const attempt = async (lines: string[]) => {
      await writeFile(join(root, 'y.service'), ['[Service]', ...lines].join('\n'));
      return resolveService('/y.service', { root }).then(() => 'resolved', (e: Error) => e.message);
    };
    assert.match(await attempt(['ExecStart=/bin/a', 'ExecStart=/bin/b']), /exactly one ExecStart/);
    assert.match(await attempt(['ExecStart=relative']), /absolute path/);
    assert.match(await attempt(['StateDirectory=../up', 'ExecStart=/bin/a']), /must be relative/);
    assert.match(await attempt(['ExecStart=/bin/a %Z']), /specifier %Z/);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test.run();
