import { LazybdError } from '../errors.js';

export type MountErrorCode =
  /** A command of the attach/mount chain (nbdfuse, losetup, mount, …) failed; the message carries its stderr. */
  | 'E_MOUNT_FAILED'
  /** The mountpoint is missing or not a directory. */
  | 'E_MOUNTPOINT_INVALID'
  /** lazybd already has (or half-has) a mount at this mountpoint. */
  | 'E_ALREADY_MOUNTED'
  /** `umount` of a mountpoint lazybd has no record of. */
  | 'E_NOT_MOUNTED'
  /** A teardown step failed (e.g. the filesystem is busy); the record stays so `umount` can be retried. */
  | 'E_UMOUNT_FAILED';

const STATUS: Record<MountErrorCode, number> = {
  E_MOUNT_FAILED: 1,
  E_MOUNTPOINT_INVALID: 2,
  E_ALREADY_MOUNTED: 2,
  E_NOT_MOUNTED: 2,
  E_UMOUNT_FAILED: 1,
};

export class MountError extends LazybdError {
  constructor(code: MountErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, { ...options, exitStatus: STATUS[code] });
  }
}
