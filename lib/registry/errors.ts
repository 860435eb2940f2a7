import { LazybdError } from '../errors.js';

export interface RegistryErrorOptions {
  /** Whether the same request may succeed if the caller tries again (the source chain decides). */
  retryable: boolean;
  /** HTTP status, when the error came from a response. */
  status?: number;
  /** Error codes from the distribution-spec error body (`MANIFEST_UNKNOWN`, `DENIED`, …). */
  registryCodes?: string[];
  cause?: unknown;
}

/** Base of every error the registry client raises. */
export class RegistryError extends LazybdError {
  readonly retryable: boolean;
  readonly status: number | undefined;
  readonly registryCodes: string[];
  constructor(code: string, message: string, options: RegistryErrorOptions) {
    super(code, message, { cause: options.cause, exitStatus: 5 });
    this.retryable = options.retryable;
    this.status = options.status;
    this.registryCodes = options.registryCodes ?? [];
  }
}

export type ResponseDetail = Omit<RegistryErrorOptions, 'retryable'>;

export class NotFoundError extends RegistryError {
  constructor(message: string, detail: ResponseDetail = {}, code = 'E_REGISTRY_NOT_FOUND') {
    super(code, message, { ...detail, retryable: false });
  }
}

export class ManifestUnknownError extends NotFoundError {
  constructor(message: string, detail: ResponseDetail = {}) {
    super(message, detail, 'E_REGISTRY_MANIFEST_UNKNOWN');
  }
}

export class BlobUnknownError extends NotFoundError {
  constructor(message: string, detail: ResponseDetail = {}) {
    super(message, detail, 'E_REGISTRY_BLOB_UNKNOWN');
  }
}

/** 401 after authenticating as well as we can: missing or wrong credentials. */
export class UnauthorizedError extends RegistryError {
  constructor(message: string, detail: ResponseDetail & { retryable?: boolean } = {}) {
    super('E_REGISTRY_UNAUTHORIZED', message, { ...detail, retryable: detail.retryable ?? false });
  }
}

/** Authenticated, but not allowed to do this (403, or a token lacking the scope). */
export class DeniedError extends RegistryError {
  constructor(message: string, detail: ResponseDetail = {}) {
    super('E_REGISTRY_DENIED', message, { ...detail, retryable: false });
  }
}

export class RangeNotSatisfiableError extends RegistryError {
  constructor(message: string, detail: ResponseDetail = {}) {
    super('E_REGISTRY_RANGE_NOT_SATISFIABLE', message, { ...detail, retryable: false });
  }
}

/** The server answered a Range request with the whole blob and the client was told not to slice it. */
export class RangeUnsupportedError extends RegistryError {
  constructor(message: string) {
    super('E_REGISTRY_RANGE_UNSUPPORTED', message, { retryable: false });
  }
}

/** Downloaded bytes do not hash (or count) to what the descriptor promised. Transit corruption may not repeat. */
export class DigestMismatchError extends RegistryError {
  constructor(readonly expected: string, readonly actual: string, message: string) {
    super('E_REGISTRY_DIGEST_MISMATCH', message, { retryable: true });
  }
}

/** A digest whose algorithm lazybd cannot compute, so the content cannot be checked. */
export class UnsupportedDigestError extends RegistryError {
  constructor(readonly digest: string) {
    super('E_REGISTRY_DIGEST_UNSUPPORTED', `cannot verify ${digest}: only sha256 and sha512 are supported`, { retryable: false });
  }
}

export class RegistryNetworkError extends RegistryError {
  constructor(message: string, cause: unknown) {
    super('E_REGISTRY_NETWORK', message, { retryable: true, cause });
  }
}

/** The TLS handshake failed (untrusted or mismatched certificate): retrying will not change the certificate. */
export class RegistryTlsError extends RegistryError {
  constructor(message: string, cause: unknown) {
    super('E_REGISTRY_TLS', message, { retryable: false, cause });
  }
}

export type TimeoutPhase = 'connect' | 'headers' | 'body';

export class RegistryTimeoutError extends RegistryError {
  constructor(readonly phase: TimeoutPhase, message: string, cause: unknown) {
    super('E_REGISTRY_TIMEOUT', message, { retryable: true, cause });
  }
}

export class TooManyRequestsError extends RegistryError {
  constructor(message: string, readonly retryAfterMs: number | undefined, detail: ResponseDetail = {}) {
    super('E_REGISTRY_TOO_MANY_REQUESTS', message, { ...detail, retryable: true });
  }
}

export class RegistryServerError extends RegistryError {
  constructor(message: string, detail: ResponseDetail = {}) {
    super('E_REGISTRY_SERVER', message, { ...detail, retryable: true });
  }
}

/** The server refused the request as malformed (400, 405, …): trying again will not help. */
export class RegistryRejectedError extends RegistryError {
  constructor(message: string, detail: ResponseDetail = {}) {
    super('E_REGISTRY_REJECTED', message, { ...detail, retryable: false });
  }
}

/** A response that breaks the protocol: wrong status, missing header, bad Content-Range, short body. */
export class RegistryProtocolError extends RegistryError {
  constructor(message: string, options: { retryable?: boolean; status?: number } = {}) {
    super('E_REGISTRY_PROTOCOL', message, { retryable: options.retryable ?? false, status: options.status });
  }
}

export function isRetryable(err: unknown): boolean {
  return err instanceof RegistryError && err.retryable;
}

/** An auth.json / config.json that cannot be read as docker/podman write it. */
export class AuthFileError extends LazybdError {
  constructor(readonly path: string, reason: string, cause?: unknown) {
    super('E_REGISTRY_AUTH_FILE', `${path}: ${reason}`, { cause });
  }
}
