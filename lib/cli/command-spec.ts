import type { OptionKind } from './option-kinds.js';

export interface OptionSpec {
  /** The long name, without `--`. */
  readonly name: string;
  readonly kind: OptionKind;
  readonly help: string;
  /** The (parsed) value when the option is absent; --help shows it. */
  readonly default?: unknown;
  /** May be given more than once; the value is then the array of every value given ([] when absent). */
  readonly repeatable?: boolean;
  /** The command cannot run without it (a repeatable one: at least once). */
  readonly required?: boolean;
  /** Another option that must be given whenever this one is (--supernode needs --token-file). */
  readonly requires?: string;
}

export interface CommandSpec {
  /** One or more words: `create`, `cache gc`. */
  readonly name: string;
  /** Positional arguments: `<required>`, `[optional]`, and a last `<name>...` that may repeat. */
  readonly args: string;
  readonly describe: string;
  readonly options: readonly OptionSpec[];
  /** Runs until stopped (a server): a valid command line starts it rather than ending. */
  readonly daemon?: boolean;
  /** Called with the positional arguments (absent optional ones undefined), then the options (`_`: repeats of a `...` argument). */
  readonly run: (...args: unknown[]) => Promise<void>;
}

export interface CliSpec {
  /** Options every command takes. */
  readonly globalOptions: readonly OptionSpec[];
  readonly commands: readonly CommandSpec[];
}

export interface PositionalSlots {
  required: string[];
  optional: string[];
  /** The last argument may repeat; the repeats go to the options' `_`. */
  repeats: boolean;
}

export function positionalSlots(args: string): PositionalSlots {
  const slots: PositionalSlots = { required: [], optional: [], repeats: false };
  for (const word of args.split(/\s+/).filter(Boolean)) {
    if (slots.repeats) throw new Error(`${args}: only the last argument may repeat`);
    slots.repeats = word.endsWith('...');
    const name = word.replace(/\.\.\.$/, '');
    if (name.startsWith('<') && slots.optional.length === 0) slots.required.push(name);
    else if (name.startsWith('[')) slots.optional.push(name);
    else throw new Error(`${args}: ${word} is neither <required> nor [optional] (or a required one after an optional one)`);
  }
  return slots;
}

/** The default as --help shows it. */
export function helpDefault(o: OptionSpec): string | number | boolean | undefined {
  const value = o.default;
  if (value === undefined || typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') return value;
  return o.kind !== 'flag' && o.kind.format ? o.kind.format(value) : undefined;
}
