import type { Dispatcher } from 'undici';
import { undiciIfLoaded } from '../lazy-undici.js';
import {
  BlobUnknownError,
  DeniedError,
  ManifestUnknownError,
  NotFoundError,
  RangeNotSatisfiableError,
  RegistryError,
  RegistryNetworkError,
  RegistryProtocolError,
  RegistryRejectedError,
  RegistryServerError,
  RegistryTlsError,
  RegistryTimeoutError,
  TooManyRequestsError,
  UnauthorizedError,
  type ResponseDetail,
} from './errors.js';

/** What a request was about, so a 404 can say which thing is unknown. */
export type Subject = 'manifest' | 'blob' | 'upload' | 'token';

const ERROR_BODY_LIMIT = 64 * 1024;
/** OpenSSL verification codes and node's TLS codes. */
const TLS_CODES = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|^ERR_TLS|^ERR_SSL/;

/** Turns an unwanted response into the matching coded error; consumes the body. */
export async function responseError(res: Dispatcher.ResponseData, subject: Subject, what: string): Promise<RegistryError> {
  const { codes, messages } = parseErrorBody(await readLimited(res.body, ERROR_BODY_LIMIT).catch(() => ''));
  const status = res.statusCode;
  const detail: ResponseDetail = { status, registryCodes: codes };
  const message = `${what}: HTTP ${status}${messages.length ? ` (${messages.join('; ')})` : ''}`;
  if (status === 404) {
    if (subject === 'manifest') return new ManifestUnknownError(message, detail);
    if (subject === 'blob') return new BlobUnknownError(message, detail);
    return new NotFoundError(message, detail);
  }
  if (status === 401) return new UnauthorizedError(message, detail);
  if (status === 403) return new DeniedError(message, detail);
  if (status === 416) return new RangeNotSatisfiableError(message, detail);
  if (status === 429) return new TooManyRequestsError(message, retryAfterMs(res.headers['retry-after']), detail);
  if (status >= 500 || status === 408) return new RegistryServerError(message, detail);
  if (status >= 400) return new RegistryRejectedError(message, detail);
  return new RegistryProtocolError(`${what}: unexpected HTTP ${status}`, { status });
}

/** Maps what undici throws (while connecting, waiting for headers or reading a body) to coded errors. */
export function transportError(err: unknown, what: string): unknown {
  if (err instanceof RegistryError) return err;
  // undici's error classes exist only once a request has loaded it; errors with a code do not need them.
  const u = undiciIfLoaded()?.errors;
  if (u && err instanceof u.ConnectTimeoutError) return new RegistryTimeoutError('connect', `${what}: connect timed out`, err);
  if (u && err instanceof u.HeadersTimeoutError) return new RegistryTimeoutError('headers', `${what}: no response headers in time`, err);
  if (u && err instanceof u.BodyTimeoutError) return new RegistryTimeoutError('body', `${what}: response body stalled`, err);
  if ((u && err instanceof u.RequestAbortedError) || (err as Error)?.name === 'AbortError') return err;
  const code = (err as NodeJS.ErrnoException)?.code;
  if (typeof code === 'string' && TLS_CODES.test(code)) return new RegistryTlsError(`${what}: ${(err as Error).message}`, err);
  if ((u && err instanceof u.UndiciError) || typeof code === 'string') {
    return new RegistryNetworkError(`${what}: ${(err as Error).message}`, err);
  }
  return err;
}

async function readLimited(body: Dispatcher.ResponseData['body'], limit: number): Promise<string> {
  const parts: Buffer[] = [];
  let size = 0;
  // Leaving the loop early destroys the body, which undici reports as an error nobody else listens for.
  body.on('error', () => undefined);
  for await (const chunk of body as AsyncIterable<Buffer>) {
    parts.push(chunk);
    size += chunk.length;
    if (size >= limit) break;
  }
  return Buffer.concat(parts).toString('utf8', 0, Math.min(size, limit));
}

function parseErrorBody(text: string): { codes: string[]; messages: string[] } {
  try {
    const parsed = JSON.parse(text) as { errors?: { code?: unknown; message?: unknown }[] };
    const errs = Array.isArray(parsed.errors) ? parsed.errors : [];
    return {
      codes: errs.map((e) => String(e.code ?? '')).filter(Boolean),
      messages: errs.map((e) => [e.code, e.message].filter(Boolean).join(': ')).filter(Boolean),
    };
  } catch {
    return { codes: [], messages: text.trim() ? [text.trim().slice(0, 200)] : [] };
  }
}

function retryAfterMs(header: string | string[] | undefined): number | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  if (!value) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return seconds * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}
