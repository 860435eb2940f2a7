import { execFile } from 'node:child_process';
import { MountError, type MountErrorCode } from './errors.js';

/**
 * Runs a system tool (losetup, mount, fusermount3, …) to completion and returns its
 * stdout; a failure becomes a coded error carrying the tool's own stderr.
 */
export function runTool(cmd: string, args: string[], code: MountErrorCode = 'E_MOUNT_FAILED'): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: 120_000 }, (err, stdout, stderr) => {
      if (!err) return resolve(stdout);
      // One line, like every lazybd error.
      const why = (stderr.trim() || err.message).replace(/\s*\n\s*/g, ' ');
      reject(new MountError(code, `${cmd} ${args.join(' ')} failed: ${why}`, { cause: err }));
    });
  });
}
