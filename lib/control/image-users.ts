import { resolve } from 'node:path';
import { LazybdError } from '../errors.js';
import { clonesIn, defaultStateDir } from '../daemon/daemon-state.js';
import { ControlClient } from './control-client.js';
import { liveDaemons } from './daemon-directory.js';

/** `lazybd rm` of an image that a daemon serves, or that kept clones are bound to. */
export class ImageInUseError extends LazybdError {
  constructor(ref: string, users: readonly string[]) {
    super('E_IMAGE_IN_USE', `${ref} is in use: ${users.join('; ')} (--force removes it anyway)`, { exitStatus: 3 });
  }
}

/**
 * Who uses image `ref` of the store at `storeDir`: the exports and clones of running daemons
 * on that store (asked over their control sockets), and the clones kept in the store's default
 * state directory for when its daemon starts again. A daemon that does not answer is skipped:
 * it may be exiting, and one that is not cannot be asked.
 */
export async function imageUsers(storeDir: string, ref: string): Promise<string[]> {
  const store = resolve(storeDir);
  const users: string[] = [];
  const bound = new Set<string>();
  for (const daemon of await liveDaemons()) {
    const client = new ControlClient(daemon.control);
    try {
      const status = await client.status();
      if (status.store !== store) continue;
      for (const e of status.exports.filter((x) => x.ref === ref)) {
        users.push(`${e.kind} ${e.export} of daemon ${status.pid}`);
        if (e.kind === 'clone') bound.add(e.export);
      }
    } catch {
      continue;
    } finally {
      await client.close();
    }
  }
  const kept = defaultStateDir(store);
  for (const c of await clonesIn(kept)) {
    if (c.image === ref && !bound.has(c.name)) users.push(`clone ${c.name} kept in ${kept}`);
  }
  return users;
}
