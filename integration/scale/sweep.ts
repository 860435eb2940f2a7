// Removal of a run's namespaces, interfaces, processes and work directory, and the
// start-up sweep for runs whose owner died without cleaning up (SIGKILL, a crash).
import { readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isProcessAlive } from '../../lib/store/process-alive.js';
import { deleteInterface, deleteNamespace, listInterfaces, listNamespaces } from './netns.js';
import { RUN_PREFIX, parseRunName } from './run-name.js';

/** Where a run keeps its stores, caches, registry storage and logs. */
export function runDirectory(run: string): string {
  return join(tmpdir(), run);
}

export interface RunResources {
  namespaces: string[];
  interfaces: string[];
  directories: string[];
}

/** Everything named for `run` (or, with no run, for any harness run) that exists now. */
export async function findRunResources(run?: string): Promise<RunResources> {
  const mine = (name: string) => (run ? name.startsWith(run) : name.startsWith(RUN_PREFIX) && parseRunName(name) !== null);
  const dirs = await readdir(tmpdir()).catch(() => [] as string[]);
  return {
    namespaces: (await listNamespaces()).filter(mine),
    interfaces: (await listInterfaces()).filter(mine),
    directories: dirs.filter(mine).map((d) => join(tmpdir(), d)),
  };
}

/** Resources of a run that `removeRun` could not remove. */
export class RunNotRemovedError extends Error {
  readonly code = 'RUN_NOT_REMOVED';
  constructor(
    readonly run: string,
    readonly left: RunResources,
    readonly causes: Error[],
  ) {
    super(`${run}: could not remove ${JSON.stringify(left)}: ${causes.map((e) => e.message).join('; ') || 'they came back'}`);
  }
}

const REMOVAL_PASSES = 3;

/**
 * Removes all of `run`: namespaces first (killing what runs in them, which is every
 * process the run started), then the veths and bridge, then the work directory. A failed
 * step does not stop the others, and what is still there afterwards gets another pass: CI
 * once saw a SIGTERM'd run keep its bridge and directory (a step had thrown and the rest was
 * skipped), and a run being aborted may still create directories while it is removed.
 */
export async function removeRun(run: string): Promise<RunResources> {
  const removed: RunResources = { namespaces: [], interfaces: [], directories: [] };
  let causes: Error[] = [];
  for (let pass = 1; ; pass++) {
    const found = await findRunResources(run);
    if (!found.namespaces.length && !found.interfaces.length && !found.directories.length) return removed;
    if (pass > REMOVAL_PASSES) throw new RunNotRemovedError(run, found, causes);
    causes = [];
    const attempt = async (step: () => Promise<unknown>) => {
      await step().catch((e: Error) => void causes.push(e));
    };
    await Promise.all(found.namespaces.map((ns) => attempt(() => deleteNamespace(ns))));
    // Host sides of veths first: deleting one takes its peer; the bridge goes last.
    const bridgesLast = [...found.interfaces].sort((a, b) => Number(a.endsWith('br')) - Number(b.endsWith('br')));
    for (const i of bridgesLast) await attempt(() => deleteInterface(i));
    for (const d of found.directories) await attempt(() => rm(d, { recursive: true, force: true }));
    if (pass === 1) Object.assign(removed, found);
    if (causes.length) await new Promise((r) => setTimeout(r, 200 * pass));
  }
}

/** Removes every run whose owner process is gone; live runs (another harness) are left alone. */
export async function sweepLeftovers(): Promise<{ runs: string[]; removed: RunResources }> {
  const all = await findRunResources();
  const dead = new Set<string>();
  for (const name of [...all.namespaces, ...all.interfaces, ...all.directories.map((d) => d.slice(tmpdir().length + 1))]) {
    const parsed = parseRunName(name);
    if (parsed && !isProcessAlive(parsed.ownerPid)) dead.add(parsed.run);
  }
  const removed: RunResources = { namespaces: [], interfaces: [], directories: [] };
  for (const run of dead) {
    const r = await removeRun(run);
    removed.namespaces.push(...r.namespaces);
    removed.interfaces.push(...r.interfaces);
    removed.directories.push(...r.directories);
  }
  return { runs: [...dead], removed };
}
