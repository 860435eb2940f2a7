import { createHash } from 'node:crypto';
import type { ChunkTable } from '../format/chunk-table.js';
import { chunkVerifyFailures, sourceBytes, sourceFetchSeconds } from '../metrics/metrics.js';
import type { BlobRangeSource, ChunkRun } from './blob-range-source.js';
import { sleep } from './abortable-sleep.js';
import { ChunkUnavailableError, SourceResponseError } from './errors.js';
import { stderrSourceLogger, type SourceLogger } from './source-logger.js';

export interface SourceChainOptions {
  /** Tried in order (e.g. peer, supernode, registry). */
  sources: readonly BlobRangeSource[];
  /** Limit for one request to one source. Default 10 s. */
  attemptTimeoutMs?: number;
  /** Limit for a whole run across all sources and retries. Default 30 s. */
  ioTimeoutMs?: number;
  /** Tries per source for retryable errors. An attempt timeout moves on to the next source at once. Default 3. */
  attemptsPerSource?: number;
  /** First retry delay, doubled each retry (capped at 5 s). Default 100 ms. */
  backoffMs?: number;
  log?: SourceLogger;
}

/** Node/undici network failures worth another try when the error says nothing itself. */
const RETRYABLE_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN', 'ENETUNREACH', 'EHOSTUNREACH', 'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);

/** An attempt's own timer fired (as opposed to the run's deadline): the next source gets a turn. */
class AttemptTimeout extends Error {}

/**
 * Fetches runs of consecutive chunks of one blob from a chain of unverified sources and
 * returns only bytes that match the chunk table. A chunk that fails verification is
 * logged and asked of the next source; retryable errors are retried on the same source
 * with exponential backoff; a source that does not answer within the attempt timeout is
 * left for the next. After `ioTimeoutMs`, or once every source has failed, the run is
 * rejected with E_CHUNK_UNAVAILABLE, naming the chunks, the sources tried and why each failed.
 */
export class SourceChain {
  readonly sources: readonly BlobRangeSource[];
  private readonly attemptTimeoutMs: number;
  private readonly ioTimeoutMs: number;
  private readonly attemptsPerSource: number;
  private readonly backoffMs: number;
  private readonly log: SourceLogger;

  constructor(options: SourceChainOptions) {
    this.sources = options.sources;
    this.attemptTimeoutMs = options.attemptTimeoutMs ?? 10_000;
    this.ioTimeoutMs = options.ioTimeoutMs ?? 30_000;
    this.attemptsPerSource = options.attemptsPerSource ?? 3;
    this.backoffMs = options.backoffMs ?? 100;
    this.log = options.log ?? stderrSourceLogger;
  }

  /** Verified bytes of chunks [first, first+count) of `blob`, one buffer per chunk. */
  async fetchRun(blob: string, table: ChunkTable, first: number, count: number): Promise<Buffer[]> {
    const out: (Buffer | undefined)[] = new Array(count);
    const failures: string[] = [];
    const deadline = AbortSignal.timeout(this.ioTimeoutMs);
    const started = performance.now();
    for (const source of this.sources) {
      if (deadline.aborted) {
        failures.push(`${source.name}: not tried`);
        continue;
      }
      for (const [a, n] of missingRuns(out)) {
        const why = await this.fromSource(source, blob, table, first + a, n, out, a, deadline);
        if (why) failures.push(`${source.name}: ${why}`);
        if (deadline.aborted) break;
      }
      if (!out.includes(undefined)) break;
    }
    const missing = missingRuns(out);
    if (missing.length === 0) return out as Buffer[];
    const [a, n] = missing[0]!;
    const what = n === 1 ? `chunk ${first + a}` : `chunks ${first + a}-${first + a + n - 1}`;
    const elapsed = ((performance.now() - started) / 1000).toFixed(1);
    const timedOut = deadline.aborted ? ` (I/O timeout ${this.ioTimeoutMs} ms)` : '';
    const tried = failures.length ? failures.join('; ') : 'no sources configured';
    throw new ChunkUnavailableError(`${what} of ${blob} (blob offset ${table.offset(first + a)}) unavailable after ${elapsed} s${timedOut}: ${tried}`);
  }

  /**
   * Asks one source for chunks [first, first+count), retrying retryable failures. Fills the
   * verified ones into out[at…]; returns why it fell short, or undefined if it did not.
   */
  private async fromSource(source: BlobRangeSource, blob: string, table: ChunkTable, first: number, count: number, out: (Buffer | undefined)[], at: number, deadline: AbortSignal): Promise<string | undefined> {
    const offset = table.offset(first);
    const length = table.offset(first + count - 1) + table.length(first + count - 1) - offset;
    let last = '';
    for (let attempt = 1; attempt <= this.attemptsPerSource; attempt++) {
      if (attempt > 1) {
        await sleep(Math.min(this.backoffMs * 2 ** (attempt - 2), 5000), deadline);
        if (deadline.aborted) break;
      }
      let bytes: Buffer;
      const t0 = performance.now();
      try {
        bytes = await this.attempt(source, blob, offset, length, { table, first, count }, deadline);
        sourceBytes.inc({ source: source.name }, bytes.length);
        if (bytes.length !== length) throw new SourceResponseError(`${bytes.length} bytes for a ${length}-byte range`);
        sourceFetchSeconds.observe({ source: source.name, outcome: 'ok' }, (performance.now() - t0) / 1000);
      } catch (err) {
        const timedOut = err instanceof AttemptTimeout || deadline.aborted;
        sourceFetchSeconds.observe({ source: source.name, outcome: timedOut ? 'timeout' : 'error' }, (performance.now() - t0) / 1000);
        last = deadline.aborted ? 'I/O timeout' : describe(err);
        // A stalled source is likely to stall again: give the next one the time left.
        if (deadline.aborted || timedOut || !isRetryable(err)) break;
        continue;
      }
      const bad: number[] = [];
      for (let j = 0; j < count; j++) {
        const start = table.offset(first + j) - offset;
        const chunk = bytes.subarray(start, start + table.length(first + j));
        if (createHash('sha256').update(chunk).digest().equals(table.digest(first + j))) out[at + j] = chunk;
        else bad.push(first + j);
      }
      if (bad.length === 0) return undefined;
      chunkVerifyFailures.inc({ source: source.name }, bad.length);
      source.reportCorrupt?.(bytes, blob, bad.map((i) => ({ offset: table.offset(i), length: table.length(i) })));
      const list = bad.length > 4 ? `${bad.slice(0, 4).join(', ')} … (${bad.length})` : bad.join(', ');
      this.log.warn(`${source.name} sent corrupt data for ${blob} chunk ${list}: digest mismatch, trying the next source`);
      return `digest mismatch for chunk ${list}`;
    }
    return last;
  }

  /** One request, abandoned (not awaited) when its timer or the deadline fires, even if the source ignores the signal. */
  private attempt(source: BlobRangeSource, blob: string, offset: number, length: number, run: ChunkRun, deadline: AbortSignal): Promise<Buffer> {
    const timeoutMs = source.attemptTimeoutMs ?? this.attemptTimeoutMs;
    const controller = new AbortController();
    return new Promise<Buffer>((resolve, reject) => {
      const end = (err: unknown): void => {
        clearTimeout(timer);
        deadline.removeEventListener('abort', onDeadline);
        if (err === undefined) return;
        reject(err);
        controller.abort();
      };
      const onDeadline = (): void => end(deadline.reason);
      const timer = setTimeout(() => end(new AttemptTimeout(`no answer within ${timeoutMs} ms`)), timeoutMs);
      deadline.addEventListener('abort', onDeadline, { once: true });
      try {
        source.fetch(blob, offset, length, controller.signal, run).then(
          (b) => {
            end(undefined);
            resolve(b);
          },
          (e: unknown) => end(e ?? new Error(`${source.name} failed without a reason`)),
        );
      } catch (e) {
        end(e ?? new Error(`${source.name} failed without a reason`));
      }
    });
  }
}

/** [start, length] of each stretch of not-yet-filled slots. */
function missingRuns(out: readonly (Buffer | undefined)[]): [number, number][] {
  const runs: [number, number][] = [];
  for (let i = 0; i < out.length; i++) {
    if (out[i]) continue;
    const last = runs[runs.length - 1];
    if (last && last[0] + last[1] === i) last[1]++;
    else runs.push([i, 1]);
  }
  return runs;
}

/** Errors say for themselves (`retryable`, as registry errors do); otherwise known network codes. */
function isRetryable(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const flag = (err as { retryable?: unknown }).retryable;
  if (typeof flag === 'boolean') return flag;
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && RETRYABLE_CODES.has(code);
}

function describe(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' ? `${code}: ${err.message}` : err.message;
}
