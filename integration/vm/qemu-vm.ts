// One TCG guest booted from the boot image's kernel and initrd with a given root disk, timed
// from qemu's start to the marker its unit prints on ttyS0, then left to power off. The qemu
// process belongs to the caller: killed at the timeout, when the test process exits or is
// signalled (support/processes.ts), and by the kernel if its parent dies (setpriv --pdeathsig).
import { once } from 'node:events';
import { spawnOwned, type Owned } from '../support/processes.js';
import { parseMarker, type BootImage, type BootMarker } from './boot-image.js';

/** How the guest's root disk (/dev/vda) reaches qemu. */
export type Drive =
  /** `-drive file=…,format=…,if=virtio`: a path, a block device, or an NBD URI (`nbd+unix:///NAME?socket=…`). */
  | { kind: 'drive'; file: string; format: 'raw' | 'qcow2' }
  /** `-blockdev driver=nbd,server.type=unix,…` and a virtio-blk device on it. */
  | { kind: 'nbd-blockdev'; socket: string; exportName: string };

export interface VmOptions {
  image: Pick<BootImage, 'kernel' | 'initrd' | 'build'>;
  drive: Drive;
  /** More kernel command line, e.g. `lazybd.write=WORD` (stored on the guest's disk). */
  append?: string[];
  memoryMiB?: number;
  /** `tcg` (the default: KVM cannot boot a Linux kernel on the machines these tests run on) or `kvm`. */
  accel?: 'tcg' | 'kvm';
  /** Bound on the whole boot, marker and power-off included. */
  timeoutMs: number;
  /** Starts qemu (argv without setpriv); the default owns it in this process. The fleet harness runs it in a host's namespace. */
  spawn?: (cmd: string, args: string[]) => Owned;
}

export interface VmBoot {
  /** From spawning qemu to the marker on the serial console. */
  bootMs: number;
  /** From spawning qemu to its exit after the guest powered off. */
  exitMs: number;
  marker: BootMarker;
  /** Everything the guest printed on ttyS0. */
  serial: string;
}

export class VmBootError extends Error {}

/** qemu's option syntax: a comma inside a value is written twice. */
function optionValue(v: string): string {
  return v.replaceAll(',', ',,');
}

export function driveArgs(drive: Drive): string[] {
  switch (drive.kind) {
    case 'drive':
      return ['-drive', `file=${optionValue(drive.file)},format=${drive.format},if=virtio,cache=writeback`];
    case 'nbd-blockdev':
      return [
        '-blockdev', `driver=nbd,node-name=root,server.type=unix,server.path=${optionValue(drive.socket)},export=${optionValue(drive.exportName)}`,
        '-device', 'virtio-blk-pci,drive=root',
      ];
  }
}

export function qemuArgs(o: Omit<VmOptions, 'timeoutMs' | 'spawn'>): string[] {
  // panic=-1 with -no-reboot: a guest that cannot mount its root ends qemu at once, not at the timeout.
  const append = ['root=/dev/vda', 'rw', 'console=ttyS0', 'fsck.mode=skip', 'panic=-1', 'quiet', ...(o.append ?? [])];
  return [
    '-accel', o.accel ?? 'tcg',
    ...(o.accel === 'kvm' ? ['-cpu', 'host'] : []),
    '-machine', 'pc',
    '-m', String(o.memoryMiB ?? 512),
    '-smp', '1',
    '-nodefaults', '-no-user-config', '-no-reboot',
    '-display', 'none',
    '-serial', 'stdio',
    '-nic', 'none',
    '-kernel', o.image.kernel,
    '-initrd', o.image.initrd,
    '-append', append.join(' '),
    ...driveArgs(o.drive),
  ];
}

function defaultSpawn(cmd: string, args: string[]): Owned {
  return spawnOwned('setpriv', ['--pdeathsig', 'KILL', '--', cmd, ...args]);
}

/** Boots one guest to its marker and waits for it to power off; throws VmBootError (with the serial log) otherwise. */
export async function bootVm(o: VmOptions): Promise<VmBoot> {
  const t0 = performance.now();
  const qemu = (o.spawn ?? defaultSpawn)('qemu-system-x86_64', qemuArgs(o));
  const exited = once(qemu.child, 'exit');
  let marker: BootMarker | undefined;
  let bootMs = NaN;
  let seen = 0;
  const onData = () => {
    if (marker) return;
    const out = qemu.output();
    const end = out.lastIndexOf('\n');
    if (end < seen) return;
    for (const line of out.slice(seen, end).split('\n')) {
      marker ??= parseMarker(o.image.build.marker, line);
    }
    seen = end + 1;
    if (marker) bootMs = performance.now() - t0;
  };
  qemu.child.stdout?.on('data', onData);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    void qemu.stop(1000);
  }, o.timeoutMs);
  try {
    await exited;
  } finally {
    clearTimeout(timer);
  }
  onData();
  const exitMs = performance.now() - t0;
  const status = qemu.child.exitCode ?? qemu.child.signalCode;
  const tail = () => qemu.output().slice(-3000);
  const ended = timedOut ? `stopped at the ${o.timeoutMs / 1000} s limit` : `qemu ended with ${status} after ${(exitMs / 1000).toFixed(1)} s`;
  if (!marker) throw new VmBootError(`the guest printed no boot marker (${ended}):\n${tail()}`);
  if (qemu.child.exitCode !== 0) throw new VmBootError(`the guest reached its marker in ${(bootMs / 1000).toFixed(1)} s but did not power off (${ended}):\n${tail()}`);
  return { bootMs, exitMs, marker, serial: qemu.output() };
}
