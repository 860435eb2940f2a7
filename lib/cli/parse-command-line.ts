import { parseArgs, type ParseArgsConfig } from 'node:util';
import { positionalSlots, type CliSpec, type CommandSpec, type OptionSpec } from './command-spec.js';
import type { GlobalOptions } from './run-command.js';
import { closest } from './suggest.js';
import { UsageError } from './usage-error.js';

/** What a command line asks for: sade's --help / --version text, or a command with checked, converted arguments. */
export type CommandLine = { kind: 'help' } | { kind: 'run'; command: CommandSpec; args: unknown[] };

type Token =
  | { kind: 'option'; index: number; name: string; rawName: string; value?: string; inlineValue?: boolean }
  | { kind: 'positional'; index: number; value: string }
  | { kind: 'option-terminator'; index: number };
type OptionToken = Extract<Token, { kind: 'option' }>;

/** Answered by sade; valid anywhere, with any command. */
const HELP_OPTIONS: ParseArgsConfig['options'] = { help: { type: 'boolean', short: 'h' }, version: { type: 'boolean', short: 'v' } };

/**
 * node's parseArgs splits the line (it keeps each option's spelling and whether a value came
 * inline, which mri, under sade, loses); strict mode is off so that every problem gets
 * lazybd's own message, code and exit status instead of the first one node throws.
 */
function tokenize(argv: readonly string[], options: readonly OptionSpec[]): Token[] {
  const config: ParseArgsConfig['options'] = { ...HELP_OPTIONS };
  for (const o of options) config[o.name] = { type: o.kind === 'flag' ? 'boolean' : 'string' };
  return parseArgs({ args: [...argv], options: config, strict: false, allowPositionals: true, allowNegative: true, tokens: true }).tokens as Token[];
}

const positionals = (tokens: Token[]) => tokens.flatMap((t) => (t.kind === 'positional' ? [t.value] : []));

/**
 * Checks `argv` (without `node lazybd`) against the command table and converts option values:
 * an unknown option, a surplus or missing argument, or a malformed value is a UsageError
 * naming it, raised before the command does anything.
 */
export function parseCommandLine(argv: readonly string[], cli: CliSpec): CommandLine {
  // First with every option any command has, to tell the command's words from option values.
  const everyOption = [...cli.globalOptions, ...cli.commands.flatMap((c) => c.options)];
  const first = tokenize(argv, everyOption);
  if (first.some((t) => t.kind === 'option' && (t.name === 'help' || t.name === 'version'))) return { kind: 'help' };
  const command = findCommand(cli.commands, positionals(first));
  // Then with exactly the options this command takes.
  const options = [...cli.globalOptions, ...command.options];
  const tokens = tokenize(argv, options);
  const values = readOptions(argv, tokens, options);
  const { args, rest } = readArguments(command, positionals(tokens).slice(command.name.split(' ').length));
  checkRequired(values, options);
  return { kind: 'run', command, args: [...args, { _: rest, ...values }] };
}

/** --json and --debug as far as `argv` gives them, for reporting a command line that failed to parse. */
export function reportingOptions(argv: readonly string[], cli: CliSpec): GlobalOptions {
  const given = new Set(tokenize(argv, cli.globalOptions).flatMap((t) => (t.kind === 'option' && t.rawName === `--${t.name}` && t.value === undefined ? [t.name] : [])));
  return { json: given.has('json'), debug: given.has('debug') };
}

function findCommand(commands: readonly CommandSpec[], words: string[]): CommandSpec {
  let found: CommandSpec | undefined;
  for (const c of commands) {
    const name = c.name.split(' ');
    if (name.every((w, i) => words[i] === w) && name.length > (found?.name.split(' ').length ?? 0)) found = c;
  }
  if (found) return found;
  if (words.length === 0) throw new UsageError('no command given; lazybd --help lists them');
  // `cache` alone, `cache gcc` or `cach gc`: the command that starts with (nearly) that word.
  const firstWords = commands.map((c) => c.name.split(' ')[0]!);
  const word = firstWords.includes(words[0]!) ? words[0]! : closest(words[0]!, firstWords);
  const meant = commands.find((c) => c.name.split(' ')[0] === word);
  throw new UsageError(`unknown command ${words.slice(0, meant?.name.split(' ').length ?? 1).join(' ')}${meant ? `; did you mean ${meant.name}?` : ''}`);
}

/** `--no-x` for a flag x: parseArgs names the token x and keeps the spelling in rawName. */
const isNegation = (t: OptionToken) => t.rawName === `--no-${t.name}`;

function readOptions(argv: readonly string[], tokens: Token[], options: readonly OptionSpec[]): Record<string, unknown> {
  const byName = new Map(options.map((o) => [o.name, o]));
  const optionTokens = tokens.filter((t): t is OptionToken => t.kind === 'option');
  // A value option cannot be negated: --no-upper is as unknown as --uper.
  const unknown = optionTokens.filter((t) => !byName.has(t.name) || (isNegation(t) && byName.get(t.name)!.kind !== 'flag'));
  if (unknown.length > 0) throw new UsageError(describeUnknown(argv, unknown, byName));

  const values: Record<string, unknown> = {};
  for (const t of optionTokens) {
    const o = byName.get(t.name)!;
    if (o.kind === 'flag') {
      if (t.value !== undefined) throw new UsageError(`option ${t.rawName} takes no value (${t.rawName}=${t.value})`);
      values[o.name] = !isNegation(t);
      continue;
    }
    // parseArgs takes the next argument as the value even when it is an option (--upper --read-only);
    // a negative number is still a value, for the kind to judge.
    if (t.value === undefined || t.value === '' || (!t.inlineValue && /^-(?!\d)/.test(t.value))) throw new UsageError(`option --${o.name} needs a value`);
    const value = o.kind.parse(t.value);
    if (value === undefined) throw new UsageError(`option --${o.name} takes ${o.kind.expects}, not ${t.value}`);
    if (o.repeatable) values[o.name] = [...((values[o.name] as unknown[] | undefined) ?? []), value];
    else if (Object.hasOwn(values, o.name)) throw new UsageError(`option --${o.name} given more than once`);
    else values[o.name] = value;
  }
  for (const o of options) {
    if (!Object.hasOwn(values, o.name) && (o.default !== undefined || o.repeatable)) values[o.name] = o.default ?? [];
  }
  return values;
}

/** Options a command cannot do without, and options that need another. `values` holds the given ones and the defaults. */
function checkRequired(values: Record<string, unknown>, options: readonly OptionSpec[]): void {
  const given = (name: string) => values[name] !== undefined && !(Array.isArray(values[name]) && (values[name] as unknown[]).length === 0);
  for (const o of options) {
    if (o.required && !given(o.name)) throw new UsageError(`option --${o.name} is required`);
    if (o.requires && given(o.name) && !given(o.requires)) throw new UsageError(`option --${o.name} needs --${o.requires}`);
  }
}

/** One clause per unknown option as typed, each with the option most likely meant. */
function describeUnknown(argv: readonly string[], unknown: OptionToken[], byName: Map<string, OptionSpec>): string {
  const clauses = new Map<number, string>();
  for (const t of unknown) {
    if (clauses.has(t.index)) continue; // -json: parseArgs makes four short options of one argument
    const typed = t.rawName.startsWith('--') ? t.rawName : argv[t.index]!.replace(/=.*/, '');
    if (t.value !== undefined && byName.get(t.rawName.replace(/^--no-/, ''))?.kind === 'flag') {
      clauses.set(t.index, `option ${typed} takes no value (${argv[t.index]})`); // --no-read-only=1
    } else if (isNegation(t) && byName.has(t.name)) {
      clauses.set(t.index, `option --${t.name} takes a value; there is no ${typed}`);
    } else {
      const meant = meantOption(t, typed, byName);
      clauses.set(t.index, `unknown option ${typed}${meant ? `; did you mean ${meant}?` : ''}`);
    }
  }
  return [...clauses.values()].join('; ');
}

function meantOption(t: OptionToken, typed: string, byName: Map<string, OptionSpec>): string | undefined {
  if (isNegation(t)) {
    const flag = closest(t.name, [...byName.values()].filter((o) => o.kind === 'flag').map((o) => o.name));
    return flag && `--no-${flag}`;
  }
  const name = closest(typed.replace(/^--?/, ''), byName.keys());
  return name && `--${name}`;
}

function readArguments(command: CommandSpec, given: string[]): { args: (string | undefined)[]; rest: string[] } {
  const slots = positionalSlots(command.args);
  const usage = `usage: lazybd ${command.name}${command.args ? ` ${command.args}` : ''} [options]`;
  const missing = slots.required.slice(given.length);
  if (missing.length > 0) throw new UsageError(`missing ${missing.join(' ')}; ${usage}`);
  const fixed = slots.required.length + slots.optional.length;
  const rest = given.slice(fixed);
  if (rest.length > 0 && !slots.repeats) throw new UsageError(`unexpected argument${rest.length > 1 ? 's' : ''} ${rest.join(' ')}; ${usage}`);
  return { args: Array.from({ length: fixed }, (_, i) => given[i]), rest };
}
