import { LazybdError } from '../errors.js';

/** A supernode request that cannot be served; `status` is the HTTP answer, `registryCode` the distribution-spec error code. */
export class SupernodeError extends LazybdError {
  constructor(
    code: string,
    message: string,
    readonly status: number,
    readonly registryCode: string,
    options?: { cause?: unknown },
  ) {
    super(code, message, { ...options, exitStatus: 5 });
  }
}

export class UnknownUpstreamError extends SupernodeError {
  constructor(ns: string) {
    super('E_SUPERNODE_UNKNOWN_UPSTREAM', `registry ${ns} is not an upstream of this supernode`, 403, 'DENIED');
  }
}

export class BadRequestError extends SupernodeError {
  constructor(message: string, registryCode = 'UNSUPPORTED') {
    super('E_SUPERNODE_BAD_REQUEST', message, 400, registryCode);
  }
}

/** Bad supernode configuration (token file, listen address): a usage-level problem at start. */
export class SupernodeConfigError extends LazybdError {
  constructor(message: string) {
    super('E_SUPERNODE_CONFIG', message, { exitStatus: 2 });
  }
}

/** A preheat job ended without every chunk in the supernode. */
export class PreheatFailedError extends LazybdError {
  constructor(message: string) {
    super('E_PREHEAT_FAILED', message, { exitStatus: 4 });
  }
}
