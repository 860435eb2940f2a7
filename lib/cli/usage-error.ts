import { LazybdError } from '../errors.js';

/** A command line lazybd cannot act on: exit status 2, code E_USAGE. */
export class UsageError extends LazybdError {
  constructor(message: string) {
    super('E_USAGE', message, { exitStatus: 2 });
  }
}
