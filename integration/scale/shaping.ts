// Link shaping with tc: a rate per direction on every link, and a one-way delay on what a
// host sends (so any two hosts see an RTT of twice the delay).
import { system } from './system-command.js';

export interface LinkShape {
  /** Rate of the link in each direction. */
  rateMbit: number;
  /** Delay added to everything the host sends; 0 for none. */
  delayUs: number;
}

/** What a kernel let us apply: sch_netem is optional (this machine's kernel has only tbf and htb). */
export interface ShapingSupport {
  delay: boolean;
}

let netem: boolean | undefined;

function tc(ns: string | null, args: string[]): Promise<string> {
  return system('tc', ns ? ['-n', ns, ...args] : args);
}

/**
 * A token bucket of `rateMbit`: the bucket holds 2 ms of traffic (at least 64 KiB, so a
 * GSO super-packet passes whole) and the queue 20 ms, beyond which packets drop as on a
 * switch port.
 */
function tbf(rateMbit: number): string[] {
  const burst = Math.max(64 * 1024 + 1514, Math.ceil((rateMbit * 1e6) / 8 / 500));
  return ['tbf', 'rate', `${rateMbit}mbit`, 'burst', String(burst), 'latency', '20ms'];
}

/**
 * Shapes the veth whose ends are `eth0` in `ns` (what the host sends: netem delay, then
 * the rate) and `hostSide` in the root namespace (what the host receives: the rate).
 * Without sch_netem the delay is left out and `delay: false` says so.
 */
export async function shapeLink(ns: string, hostSide: string, shape: LinkShape): Promise<ShapingSupport> {
  let delayed = false;
  if (shape.delayUs > 0 && netem !== false) {
    try {
      await tc(ns, ['qdisc', 'add', 'dev', 'eth0', 'root', 'handle', '1:', 'netem', 'delay', `${shape.delayUs}us`, 'limit', '100000']);
      netem = delayed = true;
    } catch (e) {
      if (!/qdisc kind is unknown/i.test((e as Error).message)) throw e;
      netem = false;
    }
  }
  await tc(ns, ['qdisc', 'add', 'dev', 'eth0', ...(delayed ? ['parent', '1:1', 'handle', '10:'] : ['root', 'handle', '10:']), ...tbf(shape.rateMbit)]);
  await tc(null, ['qdisc', 'add', 'dev', hostSide, 'root', 'handle', '10:', ...tbf(shape.rateMbit)]);
  return { delay: delayed || shape.delayUs === 0 };
}

/** Removes what `shapeLink` put on both ends of the veth (absent is fine), so it can be shaped anew. */
export async function unshapeLink(ns: string, hostSide: string): Promise<void> {
  const ignoreAbsent = (e: Error) => {
    if (!/Cannot delete qdisc with handle of zero|No such file|Invalid handle/i.test(e.message)) throw e;
  };
  await tc(ns, ['qdisc', 'del', 'dev', 'eth0', 'root']).catch(ignoreAbsent);
  await tc(null, ['qdisc', 'del', 'dev', hostSide, 'root']).catch(ignoreAbsent);
}
