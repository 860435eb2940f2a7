/**
 * Base of every error lazybd raises on purpose. `code` is stable (part of the
 * CLI/API contract); `exitStatus` is what the CLI exits with when it surfaces.
 */
export class LazybdError extends Error {
  readonly code: string;
  readonly exitStatus: number;
  constructor(code: string, message: string, options?: { cause?: unknown; exitStatus?: number }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.exitStatus = options?.exitStatus ?? 1;
  }
}
