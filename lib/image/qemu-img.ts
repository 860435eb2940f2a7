import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { LazybdError } from '../errors.js';

const run = promisify(execFile);

export class QemuImgError extends LazybdError {}

/** NBD URIs go to qemu-img as they are; everything else is a file path. */
export const isNbdUri = (source: string) => /^nbd(\+unix|\+tcp)?:\/\//.test(source);

export interface QemuImgInfo {
  format: string;
  virtualSize: number;
}

function failed(source: string, e: unknown): QemuImgError {
  const err = e as NodeJS.ErrnoException & { stderr?: string };
  if (err.code === 'ENOENT' && err.syscall?.startsWith('spawn')) return new QemuImgError('E_QEMU_IMG_MISSING', 'qemu-img is not installed (Debian: apt-get install qemu-utils)', { cause: e });
  const detail = (err.stderr ?? err.message).trim().replace(/^qemu-img: /, '');
  return new QemuImgError('E_IMPORT_MALFORMED', `qemu-img cannot read ${source}: ${detail}`, { cause: e, exitStatus: 3 });
}

/** Format and size of an image, probed unless `format` forces one; encrypted images are refused. */
export async function qemuImgInfo(source: string, format?: string): Promise<QemuImgInfo> {
  const args = ['info', '--output=json', ...(format ? ['-f', format] : []), source];
  const { stdout } = await run('qemu-img', args, { maxBuffer: 16 << 20 }).catch((e: unknown) => {
    throw failed(source, e);
  });
  const info = JSON.parse(stdout) as { format?: string; 'virtual-size'?: number; encrypted?: boolean };
  if (info.encrypted) throw new QemuImgError('E_IMPORT_ENCRYPTED', `${source} is encrypted; decrypt it first (qemu-img convert --object secret,...)`, { exitStatus: 3 });
  if (typeof info.format !== 'string' || typeof info['virtual-size'] !== 'number') throw new QemuImgError('E_IMPORT_MALFORMED', `qemu-img info gave no format or size for ${source}`, { exitStatus: 3 });
  return { format: info.format, virtualSize: info['virtual-size'] };
}

/**
 * `qemu-img convert -O raw -S 4k`: the flattened image (backing chain included) as a sparse raw
 * file, zero 4 KiB blocks left as holes. `onPercent` follows qemu-img's own progress (-p).
 */
export async function qemuImgToRaw(source: string, format: string | undefined, out: string, options: { signal?: AbortSignal; onPercent?: (p: number) => void }): Promise<void> {
  const args = ['convert', '-p', '-O', 'raw', '-S', '4k', ...(format ? ['-f', format] : []), source, out];
  const child = spawn('qemu-img', args, { stdio: ['ignore', 'pipe', 'pipe'], ...(options.signal ? { signal: options.signal } : {}) });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  child.stdout.on('data', (d: Buffer) => {
    const m = /\((\d+(?:\.\d+)?)\/100%\)[^(]*$/.exec(d.toString());
    if (m) options.onPercent?.(Number(m[1]));
  });
  await new Promise<void>((resolve, reject) => {
    child.once('error', (e) => reject(failed(source, e)));
    child.once('close', (code, signal) => {
      if (code === 0) resolve();
      else reject(failed(source, Object.assign(new Error(signal ? `killed by ${signal}` : `exit status ${code}`), { stderr })));
    });
  });
}
