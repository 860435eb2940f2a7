import { Errno, type ErrnoName } from './protocol.js';

/**
 * How a failed device call becomes an NBD error value — the contract for
 * BlockDevice implementations:
 *
 * - An error may carry an `errno` property holding one of the NBD error names
 *   ('EPERM', 'EIO', 'ENOMEM', 'EINVAL', 'ENOSPC', 'EOVERFLOW', 'ENOTSUP',
 *   'ESHUTDOWN'); LazybdError subclasses declare it as a readonly field
 *   (e.g. a "not fast" write-zeroes failure has `errno = 'ENOTSUP'`).
 * - Node system errors (fs) are recognised by their string `code`, mapped as
 *   the spec asks (EDQUOT/EFBIG count as ENOSPC, EROFS/EACCES as EPERM).
 * - Anything else is EIO.
 */
export function errnoOf(err: unknown): number {
  if (typeof err !== 'object' || err === null) return Errno.EIO;
  const hint = (err as { errno?: unknown }).errno;
  if (typeof hint === 'string' && Object.hasOwn(Errno, hint)) return Errno[hint as ErrnoName];
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string') {
    const mapped = systemCodes[code];
    if (mapped !== undefined) return mapped;
  }
  return Errno.EIO;
}

const systemCodes: Record<string, number> = {
  EPERM: Errno.EPERM,
  EACCES: Errno.EPERM,
  EROFS: Errno.EPERM,
  ENOMEM: Errno.ENOMEM,
  EINVAL: Errno.EINVAL,
  ENOSPC: Errno.ENOSPC,
  EDQUOT: Errno.ENOSPC,
  EFBIG: Errno.ENOSPC,
  EOVERFLOW: Errno.EOVERFLOW,
  ENOTSUP: Errno.ENOTSUP,
  EOPNOTSUPP: Errno.ENOTSUP,
};
