// The boot image VMs start from (integration/vm/build-boot-image.sh: minimal Debian, cloud kernel,
// a unit that prints a marker on ttyS0 and powers off), built once per set of build inputs into
// the machine's cache and reused by every test file and harness run after that.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

/** Where built images live between runs: one directory per hash of the build inputs. */
export const VM_CACHE_DIR = process.env.LAZYBD_VM_CACHE ?? '/var/cache/lazybd-test/vm';
export const BUILD_SCRIPT = join(process.cwd(), 'integration', 'vm', 'build-boot-image.sh');
/** Tools the builder and the VMs need (install-deps.sh installs them). */
export const VM_TOOLS = ['debootstrap', 'mkfs.ext4', 'flock', 'setpriv', 'qemu-system-x86_64', 'qemu-img'];

export interface BootImageInputs {
  /** Debian package mirror debootstrap installs from. */
  mirror: string;
  suite: string;
  /** Size of the raw disk (sparse). */
  diskMiB: number;
}

export const DEFAULT_INPUTS: BootImageInputs = {
  mirror: process.env.LAZYBD_VM_MIRROR ?? 'http://deb.debian.org/debian',
  suite: 'bookworm',
  diskMiB: 2048,
};

/** What build.json records about a build. */
export interface BuildInfo {
  suite: string;
  mirror: string;
  kernelVersion: string;
  /** `y` built in, `m` a module the initrd was checked to hold. */
  virtioBlk: 'y' | 'm';
  packages: number;
  diskBytes: number;
  /** Bytes the raw disk holds (the rest are holes). */
  allocatedBytes: number;
  marker: string;
  debootstrapSeconds: number;
  buildSeconds: number;
  builtAt: string;
}

export interface BootImage {
  dir: string;
  /** ext4 raw disk, root=/dev/vda. */
  disk: string;
  kernel: string;
  initrd: string;
  build: BuildInfo;
  /** True when this call built it (else it came from the cache, or from a concurrent build it waited for). */
  builtNow: boolean;
}

/** The cache directory for `inputs`: a hash of the builder script and the inputs, so changing either builds anew. */
export async function bootImageDir(inputs: BootImageInputs = DEFAULT_INPUTS): Promise<string> {
  const script = await readFile(BUILD_SCRIPT);
  const hash = createHash('sha256').update(script).update(JSON.stringify(inputs)).digest('hex').slice(0, 16);
  return join(VM_CACHE_DIR, `${inputs.suite}-${hash}`);
}

/**
 * The boot image for `inputs`, built first if the cache lacks it. The script builds under a
 * lock, in a temp dir renamed into place, so concurrent callers build it once and never see
 * half of it. Needs root and Debian's package mirror (only when building).
 */
export async function bootImage(inputs: BootImageInputs = DEFAULT_INPUTS, timeoutMs = 20 * 60_000): Promise<BootImage> {
  const dir = await bootImageDir(inputs);
  const cached = await readBuild(dir);
  const builtNow = cached ? false : (await runBuild(dir, inputs, timeoutMs)) === 'built';
  const build = cached ?? (await readBuild(dir));
  if (!build) throw new Error(`build-boot-image.sh finished without ${dir}/build.json`);
  return { dir, disk: join(dir, 'disk.raw'), kernel: join(dir, 'vmlinuz'), initrd: join(dir, 'initrd.img'), build, builtNow };
}

async function readBuild(dir: string): Promise<BuildInfo | undefined> {
  const text = await readFile(join(dir, 'build.json'), 'utf8').catch(() => undefined);
  return text === undefined ? undefined : (JSON.parse(text) as BuildInfo);
}

/** Runs the builder: 'built', or 'cached' when a concurrent build made it while this one waited for the lock. */
function runBuild(dir: string, inputs: BootImageInputs, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    // setpriv: a killed test takes its build (debootstrap and all) with it; the next build sweeps the rest.
    execFile('setpriv', ['--pdeathsig', 'KILL', '--', 'bash', BUILD_SCRIPT, dir, inputs.mirror, inputs.suite, String(inputs.diskMiB)], { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`building the boot image ${dir} failed: ${stderr.trim() || err.message}`));
      else resolve(stdout.trim());
    });
  });
}

/** The guest's marker line: `<marker> boots=N note=WORD uptime=S`. */
export interface BootMarker {
  /** How often this disk has booted to the marker, this boot included. */
  boots: number;
  /** The word stored on the disk by a boot with `lazybd.write=WORD`, or '-'. */
  note: string;
  /** The guest kernel's uptime at the marker, seconds. */
  uptimeS: number;
}

export function parseMarker(marker: string, line: string): BootMarker | undefined {
  const at = line.indexOf(`${marker} `);
  if (at < 0) return undefined;
  const fields = Object.fromEntries(line.slice(at + marker.length + 1).trim().split(/\s+/).map((f) => f.split('=', 2) as [string, string]));
  const boots = Number(fields.boots);
  const uptimeS = Number(fields.uptime);
  if (!Number.isInteger(boots) || !Number.isFinite(uptimeS) || fields.note === undefined) return undefined;
  return { boots, note: fields.note, uptimeS };
}
