import { randomInt } from 'node:crypto';

/**
 * Names of one harness run. Every namespace, bridge and veth a run creates starts with
 * `lzdc` + the owner's pid in base 36 (5 digits) + 2 random characters: two runs never
 * collide, and a sweep can tell a leftover (owner pid dead) from a live run's resources.
 * Interface names are at most 15 bytes (IFNAMSIZ - 1): the run name is 11, a role 4.
 */
export const RUN_PREFIX = 'lzdc';
const RUN_NAME = /^lzdc([0-9a-z]{5})([0-9a-z]{2})/;
const IFNAMSIZ = 15;

export function newRunName(pid = process.pid): string {
  const tag = Array.from({ length: 2 }, () => randomInt(36).toString(36)).join('');
  return `${RUN_PREFIX}${pid.toString(36).padStart(5, '0')}${tag}`;
}

/** The run a resource name belongs to and its owner pid, or null for names not ours. */
export function parseRunName(name: string): { run: string; ownerPid: number } | null {
  const m = RUN_NAME.exec(name);
  return m ? { run: m[0], ownerPid: parseInt(m[1]!, 36) } : null;
}

/** Namespace names have no length limit; `-` keeps them readable (`lzdc…-n12`). */
export function namespaceName(run: string, role: string): string {
  return `${run}-${role}`;
}

/** A root-namespace interface (bridge, host side of a veth): run name + role. */
export function interfaceName(run: string, role: string): string {
  const name = `${run}${role}`;
  if (name.length > IFNAMSIZ) throw new Error(`interface name ${name} is longer than ${IFNAMSIZ} bytes (role ${role} too long)`);
  return name;
}
