import type { Dispatcher } from 'undici';
import { RangeNotSatisfiableError, RegistryProtocolError } from './errors.js';
import { transportError } from './response-errors.js';

/**
 * Stops reading a response body and frees its connection. undici reports a
 * destroyed body as an 'error' event; nobody is listening any more, so it is
 * swallowed rather than crashing the process.
 */
export function abandon(res: Dispatcher.ResponseData): void {
  res.body.on('error', () => undefined);
  res.body.destroy();
}

/** The whole body, refusing more than `limit` bytes. */
export async function readBody(res: Dispatcher.ResponseData, limit: number, what: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of res.body as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > limit) {
        abandon(res);
        throw new RegistryProtocolError(`${what}: response larger than ${limit} bytes`);
      }
      parts.push(chunk);
    }
  } catch (e) {
    throw transportError(e, what);
  }
  return Buffer.concat(parts, size);
}

/**
 * Reads `length` bytes after skipping `skip`. A 206 body is read to its end so
 * the connection goes back to the pool; from a whole-blob 200 the rest is
 * dropped, and the connection with it.
 */
export async function readRange(res: Dispatcher.ResponseData, skip: number, length: number, what: string): Promise<Buffer> {
  const out = Buffer.allocUnsafe(length);
  const partial = res.statusCode === 206;
  let filled = 0;
  let toSkip = skip;
  // Leaving the loop early (the rest of a whole-blob 200) destroys the body: see abandon().
  if (!partial) res.body.on('error', () => undefined);
  try {
    for await (const chunk of res.body as AsyncIterable<Buffer>) {
      let piece = chunk;
      if (toSkip > 0) {
        const dropped = Math.min(toSkip, piece.length);
        toSkip -= dropped;
        piece = piece.subarray(dropped);
      }
      if (partial && filled + piece.length > length) throw new RegistryProtocolError(`${what}: body longer than the range`, { status: 206 });
      filled += piece.copy(out, filled);
      if (!partial && filled === length) break;
    }
  } catch (e) {
    abandon(res);
    throw transportError(e, what);
  }
  if (filled < length) {
    if (!partial) throw new RangeNotSatisfiableError(`${what}: blob ends before the range does`, { status: 200 });
    throw new RegistryProtocolError(`${what}: body ended after ${filled} of ${length} bytes`, { status: 206, retryable: true });
  }
  return out;
}
