import { mountImage, unmountImage } from '../mount/mount-image.js';
import { localRef } from './image-commands.js';
import { printResult, type GlobalOptions } from './run-command.js';

export interface MountOptions extends GlobalOptions {
  upper?: string;
  'read-only'?: boolean;
  fstype?: string;
}

export async function mountCommand(input: string, mountpoint: string, opts: MountOptions): Promise<void> {
  const s = await mountImage({ ref: localRef(input), mountpoint, upperDir: opts.upper, readOnly: opts['read-only'], fstype: opts.fstype, store: opts.store });
  const device = s.loopDevice ?? s.nbdDevice;
  printResult(opts, { ref: s.ref, mountpoint: s.mountpoint, device, readOnly: s.readOnly, upper: s.upperDir, daemonPid: s.daemon?.pid, socket: s.daemon?.socket }, () =>
    `mounted ${s.ref} at ${s.mountpoint} (${device}${s.readOnly ? ', read-only' : `, writes to ${s.upperDir}`}; serve daemon pid ${s.daemon?.pid})`,
  );
}

export async function umountCommand(mountpoint: string, opts: GlobalOptions): Promise<void> {
  const s = await unmountImage(mountpoint);
  printResult(opts, { ref: s.ref, mountpoint: s.mountpoint }, () => `unmounted ${s.ref} from ${s.mountpoint}`);
}
