// The command-line life of a harness run (the datacenter's, the VM fleet's): root check, the
// sweep of dead runs' leftovers, a run name, clean-up on exit, on SIGINT/SIGTERM and at the
// deadline, the report on stdout, exit status 2 for usage errors.
import { existsSync } from 'node:fs';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { LAZYBD_BIN } from '../support/cli.js';
import { hasTool } from '../support/tools.js';
import { guardRun, type RunGuard } from './run-guard.js';
import { newRunName } from './run-name.js';
import { removeRun, sweepLeftovers } from './sweep.js';
import type { Datacenter } from './topology.js';

export class UsageError extends Error {}

export type Log = (message: string) => void;

export interface HarnessRun<R> {
  /** Prefix of progress lines on stderr, e.g. `datacenter`. */
  tag: string;
  json: boolean;
  /** Only sweep leftovers, then exit. */
  cleanup: boolean;
  timeoutS: number;
  /** Checks before anything is built (tools, memory); throw UsageError to refuse. */
  preflight(): Promise<void>;
  run(run: string, log: Log, onDatacenter: (dc: Datacenter) => void): Promise<R>;
  format(report: R): string;
  /** Exit status 0 when true, else 1. */
  succeeded(report: R): boolean;
}

/** Checks that the CLI is built and `tools` are installed (a UsageError naming the missing ones). */
export async function requireHarnessTools(tools: string[]): Promise<void> {
  if (!existsSync(LAZYBD_BIN)) throw new UsageError(`${LAZYBD_BIN} is missing: build with npx tsc -p . (run from the repository root)`);
  const missing = [];
  for (const t of tools) if (!(await hasTool(t))) missing.push(t);
  if (missing.length) throw new UsageError(`missing tools: ${missing.join(', ')} (bash integration/setup/install-deps.sh)`);
}

/** A numeric option in [min, max]; a UsageError otherwise. */
export function numberOption(values: Record<string, unknown>, name: string, min: number, max: number, integer = true): number {
  const v = Number(values[name]);
  if (!Number.isFinite(v) || v < min || v > max || (integer && !Number.isInteger(v))) throw new UsageError(`--${name} must be ${integer ? 'an integer' : 'a number'} in [${min}, ${max}], not ${String(values[name])}`);
  return v;
}

/** A comma-separated list of values from `allowed`; a UsageError names the first stranger. */
export function listOption<T extends string>(value: string, name: string, allowed: readonly T[]): T[] {
  const items = value.split(',').map((m) => m.trim());
  for (const m of items) if (!(allowed as readonly string[]).includes(m)) throw new UsageError(`unknown --${name} ${m} (${allowed.join(', ')})`);
  return items as T[];
}

/** What every harness run is given besides its own options: the links and the bounds. */
export interface CommonHarnessOptions {
  supernodes: number;
  registryMbit: number;
  linkMbit: number;
  rttUs: number;
  /** Bound on each service start and CLI call. */
  stepTimeoutMs: number;
}

export interface HarnessArgs {
  values: Record<string, string | boolean | undefined>;
  common: CommonHarnessOptions;
  json: boolean;
  cleanup: boolean;
  timeoutS: number;
}

/**
 * Parses a harness's command line: its own options (`usage` their lines) and the ones every
 * harness has. `--help` prints the whole usage and exits.
 */
export function parseHarnessArgs(bin: string, own: NonNullable<ParseArgsConfig['options']>, usage: string, defaults: { stepHelp: string; timeoutS: number }): HarnessArgs {
  const { values } = parseArgs({
    allowNegative: true,
    options: {
      ...own,
      supernodes: { type: 'string', default: '1' },
      'registry-mbit': { type: 'string', default: '200' },
      'link-mbit': { type: 'string', default: '1000' },
      'rtt-us': { type: 'string', default: '500' },
      'step-timeout': { type: 'string', default: '300' },
      timeout: { type: 'string', default: String(defaults.timeoutS) },
      json: { type: 'boolean', default: false },
      cleanup: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log([
      `usage: node ${bin} [options]`,
      usage,
      '  --supernodes K         supernodes in the supernode modes (default 1)',
      '  --registry-mbit R      registry link rate (default 200)',
      "  --link-mbit R          every other link's rate (default 1000)",
      '  --rtt-us U             round-trip time between any two hosts (default 500; needs sch_netem)',
      `  --step-timeout S       ${defaults.stepHelp} (default 300)`,
      `  --timeout S            bound on the whole run (default ${defaults.timeoutS})`,
      '  --json                 the report as JSON on stdout (progress stays on stderr)',
      '  --cleanup              only remove leftovers of killed runs, then exit',
    ].join('\n'));
    process.exit(0);
  }
  const num = (name: string, min: number, max: number) => numberOption(values, name, min, max);
  return {
    values,
    common: {
      supernodes: num('supernodes', 1, 240),
      registryMbit: num('registry-mbit', 1, 100_000),
      linkMbit: num('link-mbit', 1, 100_000),
      rttUs: num('rtt-us', 0, 1_000_000),
      stepTimeoutMs: num('step-timeout', 5, 86_400) * 1000,
    },
    json: values.json as boolean,
    cleanup: values.cleanup as boolean,
    timeoutS: num('timeout', 10, 7 * 86_400),
  };
}

/** Runs `h` and exits: 0 on success, 1 on a failed run or error, 2 on a usage error, 130/143 on a signal. */
export function harnessMain<R>(h: () => HarnessRun<R>): void {
  let guard: RunGuard | undefined;
  const main = async (): Promise<number> => {
    const o = h();
    const log = (m: string) => process.stderr.write(`[${o.tag}] ${m}\n`);
    if (process.getuid?.() !== 0) throw new UsageError('the harness manages network namespaces: run it as root');
    const swept = await sweepLeftovers();
    if (swept.runs.length) log(`removed leftovers of ${swept.runs.length} dead run(s) ${swept.runs.join(' ')}: ${swept.removed.namespaces.length} namespaces, ${swept.removed.interfaces.length} interfaces, ${swept.removed.directories.length} directories`);
    if (o.cleanup) {
      if (o.json) console.log(JSON.stringify(swept));
      return 0;
    }
    await o.preflight();

    const run = newRunName();
    let dc: Datacenter | undefined;
    // A signal or the deadline: clean up and exit with its status, whatever the run then throws.
    guard = guardRun(() => (dc ? dc.destroy() : removeRun(run).then(() => undefined)), (why) => log(`${why}: cleaning up ${run}`), o.timeoutS);
    log(`run ${run}`);
    try {
      const report = await o.run(run, log, (d) => (dc = d));
      console.log(o.json ? JSON.stringify(report) : o.format(report));
      return o.succeeded(report) ? 0 : 1;
    } finally {
      await guard.finish();
    }
  };
  main().then(
    (status) => process.exit(status),
    (e: Error) => {
      if (guard?.abortStatus !== undefined) process.exit(guard.abortStatus);
      process.stderr.write(`${process.argv[1]?.split('/').pop()?.replace(/\.js$/, '')}: ${e instanceof UsageError ? e.message : (e.stack ?? e.message)}\n`);
      process.exit(e instanceof UsageError ? 2 : 1);
    },
  );
}
