// What systemd would run for a service unit, worked out without systemd: the unit file's
// syntax, Environment= and EnvironmentFile= (files override), the directories and credentials
// the manager makes (RuntimeDirectory=, StateDirectory=, CacheDirectory=, LoadCredential=), the
// specifiers (%d, %n, %t, ...) and ExecStart='s variable substitution ("$VAR" as a word splits into
// words, "${VAR}" stays one). Optionally every path is taken from another root directory, so a
// test or the netns harness can run a unit's exact command line in a temp root, where systemd
// is not PID 1 and could not start it (deploy/run-unit.ts, deploy/provision/common.sh).
//
// The rules follow systemd.syntax(7), systemd.exec(5), systemd.service(5) and systemd.unit(5)
// ("Specifiers") of systemd 252 (Debian 12). Only what lazybd's units and Debian's
// docker-registry.service use is supported; anything else is an error, never a silent guess.
import { chmod, copyFile, mkdir, readFile, stat } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

export class UnitFileError extends Error {}

/** The manager's own PATH for services (systemd 252 on a merged-/usr system). */
export const SYSTEMD_SERVICE_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin';

export type UnitSections = Map<string, Map<string, string[]>>;

/**
 * A unit file's sections, each key with every value assigned to it in order. Comments
 * (`#`, `;`) and blank lines are skipped; a line ending in `\` continues on the next, the
 * backslash becoming a space. An empty assignment (`Key=`) resets the list, as systemd
 * does for list settings.
 */
export function parseUnitFile(text: string): UnitSections {
  const sections: UnitSections = new Map();
  let current: Map<string, string[]> | undefined;
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i]!.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    while (line.endsWith('\\') && i + 1 < lines.length) {
      const next = lines[++i]!.trim();
      // Comment lines inside a continued line are skipped (systemd.syntax(7)).
      if (next.startsWith('#') || next.startsWith(';')) continue;
      line = `${line.slice(0, -1)} ${next}`;
    }
    const header = /^\[([^\]]+)\]$/.exec(line);
    if (header) {
      current = sections.get(header[1]!) ?? new Map();
      sections.set(header[1]!, current);
      continue;
    }
    const eq = line.indexOf('=');
    if (eq <= 0) throw new UnitFileError(`line ${i + 1}: not a section header or an assignment: ${line}`);
    if (!current) throw new UnitFileError(`line ${i + 1}: assignment outside a section`);
    const key = line.slice(0, eq).trim();
    const value = line.slice(eq + 1).trim();
    if (value === '') current.set(key, []);
    else current.set(key, [...(current.get(key) ?? []), value]);
  }
  return sections;
}

const C_ESCAPES: Record<string, string> = { a: '\x07', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v', '\\': '\\', '"': '"', "'": "'", s: ' ' };

/**
 * Splits a setting into words the way systemd's extract_first_word(…, EXTRACT_UNQUOTE |
 * EXTRACT_CUNESCAPE) does: whitespace separates words, single and double quotes group (and are
 * removed), C escapes (`\n`, `\"`, `\\`, `\x41`, …) are resolved.
 */
export function splitWords(text: string): string[] {
  const words: string[] = [];
  let i = 0;
  const n = text.length;
  while (i < n) {
    while (i < n && /\s/.test(text[i]!)) i++;
    if (i >= n) break;
    let word = '';
    let quote: string | null = null;
    for (; i < n; i++) {
      const c = text[i]!;
      if (c === '\\') {
        const e = text[++i];
        if (e === undefined) throw new UnitFileError(`trailing backslash in: ${text}`);
        if (e === 'x') {
          const hex = text.slice(i + 1, i + 3);
          if (!/^[0-9a-fA-F]{2}$/.test(hex)) throw new UnitFileError(`bad \\x escape in: ${text}`);
          word += String.fromCharCode(parseInt(hex, 16));
          i += 2;
        } else if (C_ESCAPES[e] !== undefined) word += C_ESCAPES[e];
        else throw new UnitFileError(`unknown escape \\${e} in: ${text}`);
      } else if (quote) {
        if (c === quote) quote = null;
        else word += c;
      } else if (c === '"' || c === "'") quote = c;
      else if (/\s/.test(c)) break;
      else word += c;
    }
    if (quote) throw new UnitFileError(`unbalanced quote in: ${text}`);
    words.push(word);
  }
  return words;
}

/**
 * An environment file (systemd.exec(5), EnvironmentFile=): `KEY=VALUE` lines, `#`/`;`
 * comments, a trailing `\` continues a line. Whitespace around the value is stripped unless
 * quoted; double quotes allow `\"`, `\\`, `\$` and `` \` `` escapes, single quotes none;
 * outside quotes a backslash keeps the next character. No variables are expanded.
 */
export function parseEnvironmentFile(text: string): [string, string][] {
  const out: [string, string][] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i]!;
    if (/^\s*([#;]|$)/.test(line)) continue;
    while (/(^|[^\\])(\\\\)*\\$/.test(line) && i + 1 < lines.length) line = line.slice(0, -1) + lines[++i]!;
    const m = /^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(line);
    if (!m) throw new UnitFileError(`environment file line ${i + 1}: not KEY=VALUE: ${line}`);
    out.push([m[1]!, unquoteEnvValue(m[2]!)]);
  }
  return out;
}

function unquoteEnvValue(raw: string): string {
  let v = '';
  let quote: string | null = null;
  let trailingSpace = 0; // unquoted trailing whitespace is stripped
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i]!;
    if (quote === "'") {
      if (c === "'") quote = null;
      else v += c;
      trailingSpace = 0;
    } else if (quote === '"') {
      if (c === '"') quote = null;
      else if (c === '\\' && i + 1 < raw.length && '"\\`$'.includes(raw[i + 1]!)) v += raw[++i];
      else v += c;
      trailingSpace = 0;
    } else if (c === "'" || c === '"') {
      quote = c;
      trailingSpace = 0;
    } else if (c === '\\' && i + 1 < raw.length) {
      v += raw[++i];
      trailingSpace = 0;
    } else {
      v += c;
      trailingSpace = /\s/.test(c) ? trailingSpace + 1 : 0;
    }
  }
  if (quote) throw new UnitFileError(`unbalanced quote in environment value: ${raw}`);
  return trailingSpace ? v.slice(0, -trailingSpace) : v;
}

/** `90`, `90s`, `1min 30s`, `500ms`, `infinity` (systemd.time(7)), in milliseconds. */
export function parseTimeSpan(text: string): number {
  if (text.trim() === 'infinity') return Infinity;
  const units: Record<string, number> = { us: 0.001, ms: 1, '': 1000, s: 1000, sec: 1000, m: 60_000, min: 60_000, h: 3_600_000, hr: 3_600_000 };
  let total = 0;
  const parts = text.trim().split(/\s+/);
  for (const p of parts) {
    const m = /^(\d+(?:\.\d+)?)([a-z]*)$/.exec(p);
    if (!m || units[m[2]!] === undefined) throw new UnitFileError(`not a time span: ${text}`);
    total += Number(m[1]) * units[m[2]!]!;
  }
  return total;
}

export interface ResolveOptions {
  /**
   * Take every path from this directory instead of `/` (default: `/`, no remapping). Files the
   * unit reads (EnvironmentFile=, LoadCredential= sources) are read from there, its directories
   * made there, and each absolute path in the command line and environment that the root holds,
   * or whose parent directory it holds, is rewritten into it (the executable only if it exists
   * there).
   */
  root?: string;
  /** The unit's name (default: the file's name). */
  unitName?: string;
}

export interface ManagedDirectory {
  /** Where it is, in the root. */
  path: string;
  mode: number;
}

export interface ResolvedService {
  unitName: string;
  type: string;
  user?: string;
  group?: string;
  /** The command line, as systemd would execve it (with paths in the root). */
  argv: string[];
  /** The whole environment of the process: nothing else is inherited. */
  env: Record<string, string>;
  umask: number;
  timeoutStopMs: number;
  killSignal: string;
  /** RuntimeDirectory=, StateDirectory=, CacheDirectory=, LogsDirectory=, ConfigurationDirectory=. */
  directories: ManagedDirectory[];
  /** LoadCredential=: copied from `source` into `path` (mode 0400). */
  credentials: { id: string; source: string; path: string }[];
}

const DIRECTORY_KINDS = [
  { key: 'RuntimeDirectory', base: '/run', env: 'RUNTIME_DIRECTORY', defaultMode: 0o755 },
  { key: 'StateDirectory', base: '/var/lib', env: 'STATE_DIRECTORY', defaultMode: 0o755 },
  { key: 'CacheDirectory', base: '/var/cache', env: 'CACHE_DIRECTORY', defaultMode: 0o755 },
  { key: 'LogsDirectory', base: '/var/log', env: 'LOGS_DIRECTORY', defaultMode: 0o755 },
  { key: 'ConfigurationDirectory', base: '/etc', env: 'CONFIGURATION_DIRECTORY', defaultMode: 0o755 },
] as const;

/** Works out what systemd would run for the service unit at `unitPath` (a path in the root). */
export async function resolveService(unitPath: string, options: ResolveOptions = {}): Promise<ResolvedService> {
  const root = options.root && options.root !== '/' ? options.root : '';
  const inRoot = (p: string) => (root ? join(root, p) : p);
  const unitName = options.unitName ?? basename(unitPath);
  if (!unitName.endsWith('.service')) throw new UnitFileError(`${unitName}: only service units are supported`);
  const sections = parseUnitFile(await readFile(inRoot(unitPath), 'utf8'));
  const service = sections.get('Service') ?? new Map<string, string[]>();
  const last = (key: string): string | undefined => service.get(key)?.at(-1);
  const all = (key: string): string[] => service.get(key) ?? [];

  const prefix = unitName.replace(/@.*$|\.service$/, '');
  const instance = /@(.*)\.service$/.exec(unitName)?.[1] ?? '';
  const credentialsDir = `/run/credentials/${unitName}`;
  const user = last('User');
  const specifiers: Record<string, string> = {
    n: unitName,
    N: unitName.replace(/\.service$/, ''),
    p: prefix,
    i: instance,
    d: credentialsDir,
    t: '/run',
    S: '/var/lib',
    C: '/var/cache',
    L: '/var/log',
    E: '/etc',
    u: user ?? 'root',
    '%': '%',
  };
  const expandSpecifiers = (text: string): string =>
    text.replace(/%(.)/g, (_, c: string) => {
      const v = specifiers[c];
      if (v === undefined) throw new UnitFileError(`${unitName}: specifier %${c} is not supported here`);
      return v;
    });

  // The manager's environment first, then Environment=, then EnvironmentFile= (which override).
  const env: Record<string, string> = { PATH: SYSTEMD_SERVICE_PATH };
  if (user) {
    const account = await lookUpUser(inRoot('/etc/passwd'), user);
    Object.assign(env, { USER: user, LOGNAME: user, HOME: account?.home ?? '/', SHELL: account?.shell ?? '/usr/sbin/nologin' });
  }
  for (const line of all('Environment')) {
    for (const word of splitWords(expandSpecifiers(line))) {
      const eq = word.indexOf('=');
      if (eq <= 0) throw new UnitFileError(`${unitName}: Environment= wants VAR=VALUE, not ${word}`);
      env[word.slice(0, eq)] = word.slice(eq + 1);
    }
  }
  for (const line of all('EnvironmentFile')) {
    const optional = line.startsWith('-');
    const path = expandSpecifiers(optional ? line.slice(1) : line);
    let text: string;
    try {
      text = await readFile(inRoot(path), 'utf8');
    } catch (e) {
      if (optional && (e as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw new UnitFileError(`${unitName}: EnvironmentFile=${path}: ${(e as Error).message}`);
    }
    for (const [k, v] of parseEnvironmentFile(text)) env[k] = v;
  }

  const directories: ManagedDirectory[] = [];
  for (const kind of DIRECTORY_KINDS) {
    const names = all(kind.key).flatMap((l) => splitWords(expandSpecifiers(l)));
    if (names.length === 0) continue;
    const modeText = last(`${kind.key}Mode`);
    const mode = modeText === undefined ? kind.defaultMode : parseInt(modeText, 8);
    const paths = names.map((n) => {
      if (n.startsWith('/') || n.split('/').includes('..')) throw new UnitFileError(`${unitName}: ${kind.key}=${n} must be relative`);
      return join(kind.base, n);
    });
    for (const p of paths) directories.push({ path: inRoot(p), mode });
    env[kind.env] = paths.map(inRoot).join(':');
  }

  const credentials: ResolvedService['credentials'] = [];
  for (const line of all('LoadCredential')) {
    const text = expandSpecifiers(line);
    const colon = text.indexOf(':');
    const id = colon < 0 ? text : text.slice(0, colon);
    const source = colon < 0 ? '' : text.slice(colon + 1);
    if (!/^[A-Za-z0-9_.-]+$/.test(id) || !source.startsWith('/')) throw new UnitFileError(`${unitName}: LoadCredential=${text}: want ID:/absolute/path`);
    credentials.push({ id, source: inRoot(source), path: join(inRoot(credentialsDir), id) });
  }
  if (credentials.length) env.CREDENTIALS_DIRECTORY = inRoot(credentialsDir);

  const execStarts = all('ExecStart');
  const type = last('Type') ?? 'simple';
  if (execStarts.length !== 1) throw new UnitFileError(`${unitName}: a Type=${type} service has exactly one ExecStart=, not ${execStarts.length}`);
  let command = execStarts[0]!;
  let substitute = true;
  for (;;) {
    const c = command[0];
    if (c === '@') throw new UnitFileError(`${unitName}: ExecStart=@ (argv[0] override) is not supported`);
    if (c === '-' || c === '+' || c === '!') command = command.slice(1);
    else if (c === ':') {
      substitute = false;
      command = command.slice(1);
    } else break;
  }
  const words = splitWords(command).map(expandSpecifiers);
  const argv = substitute ? substituteVariables(words, env) : words;
  if (!argv[0]?.startsWith('/')) throw new UnitFileError(`${unitName}: ExecStart= must name an absolute path, not ${argv[0] ?? '(nothing)'}`);

  if (root) {
    // What the manager makes before the start counts as held by the root already.
    const made = [...directories.map((d) => d.path), ...(credentials.length ? [inRoot(credentialsDir)] : [])];
    const exe = inRoot(argv[0]);
    if (existsSync(exe)) argv[0] = exe;
    for (let i = 1; i < argv.length; i++) argv[i] = remapWord(argv[i]!, root, made);
    for (const [k, v] of Object.entries(env)) if (/^\/[^\s:]*$/.test(v)) env[k] = remapPath(v, root, made);
  }

  return {
    unitName,
    type,
    user,
    group: last('Group'),
    argv,
    env,
    umask: parseInt(last('UMask') ?? '0022', 8),
    timeoutStopMs: parseTimeSpan(last('TimeoutStopSec') ?? last('TimeoutSec') ?? '90'),
    killSignal: last('KillSignal') ?? 'SIGTERM',
    directories,
    credentials,
  };
}

/**
 * ExecStart= variable substitution (systemd.service(5), "Command lines"): a word that is
 * exactly `$NAME` becomes the variable's value split into words (none if unset or empty);
 * `${NAME}` anywhere in a word is replaced in place; `$$` is a literal `$`.
 */
export function substituteVariables(words: string[], env: Record<string, string>): string[] {
  const out: string[] = [];
  for (const w of words) {
    const whole = /^\$([A-Za-z_][A-Za-z0-9_]*)$/.exec(w);
    if (whole) {
      out.push(...splitWords(env[whole[1]!] ?? ''));
      continue;
    }
    out.push(w.replace(/\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_m, name: string | undefined) => (name === undefined ? '$' : (env[name] ?? ''))));
  }
  return out;
}

/** An argument that is an absolute path, or `--option=/path`, rewritten into the root when the root holds it or its directory. */
function remapWord(word: string, root: string, made: string[]): string {
  const option = /^(--?[A-Za-z0-9][A-Za-z0-9-]*=)(\/.*)$/.exec(word);
  if (option) return option[1]! + remapPath(option[2]!, root, made);
  return word.startsWith('/') ? remapPath(word, root, made) : word;
}

function remapPath(path: string, root: string, made: string[]): string {
  if (path.startsWith(root + '/')) return path;
  const candidate = join(root, path);
  const held = (p: string) => existsSync(p) || made.some((m) => p === m || p.startsWith(m + '/'));
  return held(candidate) || (path !== '/' && held(dirname(candidate))) ? candidate : path;
}

async function lookUpUser(passwdFile: string, user: string): Promise<{ home: string; shell: string } | undefined> {
  const text = await readFile(passwdFile, 'utf8').catch(() => '');
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f[0] === user && f.length >= 7) return { home: f[5]!, shell: f[6]! };
  }
  return undefined;
}

/**
 * Does what the manager does before it starts the service: makes its directories (with
 * their modes) and its credentials directory (each credential a 0400 copy of its source).
 * Ownership is left alone: the caller runs the command as whoever it is.
 */
export async function prepareService(s: ResolvedService): Promise<void> {
  for (const d of s.directories) {
    await mkdir(d.path, { recursive: true });
    await chmod(d.path, d.mode);
  }
  if (s.credentials.length) {
    const dir = s.env.CREDENTIALS_DIRECTORY!;
    await mkdir(dir, { recursive: true, mode: 0o700 });
    for (const c of s.credentials) {
      if (!(await stat(c.source).catch(() => undefined))?.isFile()) throw new UnitFileError(`${s.unitName}: LoadCredential source ${c.source} is not a file`);
      await copyFile(c.source, c.path);
      await chmod(c.path, 0o400);
    }
    await chmod(dir, 0o500);
  }
}

/** The command line as one shell line: `umask U; cd /; env -i K=V … argv…`. */
export function shellLine(s: ResolvedService): string {
  const q = (w: string) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(w) ? w : `'${w.replace(/'/g, `'\\''`)}'`);
  return [`umask ${s.umask.toString(8).padStart(4, '0')};`, 'cd /;', 'exec env -i', ...Object.entries(s.env).map(([k, v]) => q(`${k}=${v}`)), ...s.argv.map(q)].join(' ');
}
