import { LazybdError } from '../errors.js';
import type { CliSpec } from './command-spec.js';
import { parseCommandLine, reportingOptions, type CommandLine } from './parse-command-line.js';

export interface GlobalOptions {
  store?: string;
  json?: boolean;
  debug?: boolean;
}

/**
 * Wraps a command action: a failure becomes one clear line on stderr (with its code)
 * and the error's exit status; the stack only with --debug.
 */
export function runCommand<A extends unknown[]>(action: (...args: A) => Promise<void>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    const opts = (args[args.length - 1] ?? {}) as GlobalOptions;
    try {
      await action(...args);
    } catch (e) {
      process.exitCode = reportError(e, opts);
    }
  };
}

/**
 * `runCommand` for an action exported as `name` by a module imported only when the command runs.
 * Its arguments come from the command-line parser, which the command table drives.
 */
export function lazyCommand<M extends Record<K, (...args: never[]) => Promise<void>>, K extends keyof M & string>(load: () => Promise<M>, name: K): (...args: unknown[]) => Promise<void> {
  return runCommand(async (...args: unknown[]) => {
    const action: (...args: never[]) => Promise<void> = (await load())[name];
    await action(...(args as never[]));
  });
}

/** Runs the command `argv` (without `node lazybd`) names, or reports why it cannot (E_USAGE, exit status 2). */
export async function runCommandLine(argv: readonly string[], cli: CliSpec, answerHelp: () => void): Promise<void> {
  let line: CommandLine;
  try {
    line = parseCommandLine(argv, cli);
  } catch (e) {
    process.exitCode = reportError(e, reportingOptions(argv, cli));
    return;
  }
  if (line.kind === 'help') answerHelp();
  else await line.command.run(...line.args);
}

export function reportError(e: unknown, opts: GlobalOptions): number {
  const err = e as Error & { code?: string; exitStatus?: number };
  if (opts.json) process.stdout.write(JSON.stringify({ error: { code: err.code ?? 'E_INTERNAL', message: err.message } }) + '\n');
  const code = err.code ? ` (${err.code})` : '';
  process.stderr.write(`lazybd: ${err.message}${code}\n`);
  if (opts.debug && err.stack) process.stderr.write(`${err.stack}\n`);
  return e instanceof LazybdError ? err.exitStatus! : 1;
}

/** Prints a result: JSON when asked, otherwise the human text. */
export function printResult(opts: GlobalOptions, json: unknown, human: () => string): void {
  process.stdout.write(opts.json ? JSON.stringify(json) + '\n' : human() + '\n');
}
