import { setTimeout as sleep } from 'node:timers/promises';
import { undici } from '../lazy-undici.js';
import { LazybdError } from '../errors.js';
import type { PreheatJob, PreheatRequest } from './preheat-jobs.js';

export interface PreheatRunOptions extends Omit<PreheatRequest, 'members' | 'self'> {
  urls: string[];
  token: string;
  ca?: string | Buffer;
  insecureSkipVerify?: boolean;
  /** How often job states are read. Default 500 ms. */
  pollMs?: number;
  onProgress?: (p: PreheatProgress) => void;
}

export interface PreheatProgress {
  chunks: { total: number; done: number; failed: number };
  bytes: { total: number; done: number; fetched: number };
  rateBytesPerSec: number;
  etaSeconds: number | null;
  supernodes: { url: string; id: string; state: PreheatJob['state'] | 'unreachable' }[];
}

export interface PreheatRunResult {
  summary: { chunks: number; bytes: number; fetched: number; seconds: number; jobs: { url: string; id: string }[] };
  failed: { url: string; job: PreheatJob }[];
}

/** The supernode answered what it should not have, or not at all for longer than the job may take. */
export class PreheatClientError extends LazybdError {
  constructor(message: string) {
    super('E_PREHEAT_CLIENT', message, { exitStatus: 5 });
  }
}

/** Time past the jobs' own timeout that a supernode may stay unreachable (a restart) before the client gives up. */
const GRACE_MS = 60_000;

/**
 * Starts one preheat job on every supernode (each for its rendezvous share of the chunks)
 * and follows them to their end. A supernode restarting meanwhile resumes its job under the
 * same id; the client keeps asking until the job's timeout (plus a grace) has passed.
 */
export async function runPreheat(o: PreheatRunOptions): Promise<PreheatRunResult> {
  const { Agent } = await undici();
  const agent = new Agent({ connect: { ...(o.ca === undefined ? {} : { ca: o.ca }), rejectUnauthorized: !o.insecureSkipVerify } });
  const started = Date.now();
  const deadline = started + (o.timeoutSeconds ?? 3600) * 1000 + GRACE_MS;
  try {
    const call = async (url: string, path: string, body?: unknown): Promise<PreheatJob> => {
      const target = new URL(path, url);
      const res = await agent.request({
        origin: target.origin,
        path: target.pathname + target.search,
        method: body === undefined ? 'GET' : 'POST',
        headers: { authorization: `Bearer ${o.token}`, 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
        headersTimeout: 10_000,
        bodyTimeout: 10_000,
      });
      const text = await res.body.text();
      if (res.statusCode !== 200 && res.statusCode !== 202) {
        let message = text;
        try {
          message = (JSON.parse(text) as { errors: { message: string }[] }).errors[0]!.message;
        } catch {
          // not a distribution error body: keep the text
        }
        throw new PreheatClientError(`${url}: HTTP ${res.statusCode}: ${message}`);
      }
      return JSON.parse(text) as PreheatJob;
    };
    const base: PreheatRequest = { ns: o.ns, repository: o.repository, reference: o.reference, timeoutSeconds: o.timeoutSeconds, concurrency: o.concurrency };
    // With several supernodes each takes the chunks whose rendezvous home it is.
    const shard = (url: string) => (o.urls.length > 1 ? { members: o.urls, self: url } : {});
    const jobs = await Promise.all(o.urls.map(async (url) => ({ url, job: await call(url, '/lazybd/v1/preheat', { ...base, ...shard(url) }) })));
    const unreachable = new Set<string>();
    for (;;) {
      const ended = jobs.every(({ job }) => job.state === 'done' || job.state === 'failed');
      o.onProgress?.(aggregate(jobs, unreachable));
      if (ended) break;
      if (Date.now() > deadline) throw new PreheatClientError(`preheat did not end in time: ${jobs.map(({ url, job }) => `${url} ${unreachable.has(url) ? 'unreachable' : job.state}`).join(', ')}`);
      await sleep(o.pollMs ?? 500);
      await Promise.all(
        jobs.map(async (entry) => {
          if (entry.job.state === 'done' || entry.job.state === 'failed') return;
          try {
            entry.job = await call(entry.url, `/lazybd/v1/preheat/${entry.job.id}`);
            unreachable.delete(entry.url);
          } catch (e) {
            if (e instanceof PreheatClientError) throw e;
            unreachable.add(entry.url);
          }
        }),
      );
    }
    const p = aggregate(jobs, unreachable);
    return {
      summary: { chunks: p.chunks.done, bytes: p.bytes.done, fetched: p.bytes.fetched, seconds: (Date.now() - started) / 1000, jobs: jobs.map(({ url, job }) => ({ url, id: job.id })) },
      failed: jobs.filter(({ job }) => job.state === 'failed'),
    };
  } finally {
    await agent.close();
  }
}

function aggregate(jobs: { url: string; job: PreheatJob }[], unreachable: Set<string>): PreheatProgress {
  const sum = (f: (j: PreheatJob) => number) => jobs.reduce((n, { job }) => n + f(job), 0);
  const rate = sum((j) => j.rateBytesPerSec);
  const left = sum((j) => j.bytes.total - j.bytes.done);
  return {
    chunks: { total: sum((j) => j.chunks.total), done: sum((j) => j.chunks.done), failed: sum((j) => j.chunks.failed) },
    bytes: { total: sum((j) => j.bytes.total), done: sum((j) => j.bytes.done), fetched: sum((j) => j.bytes.fetched) },
    rateBytesPerSec: rate,
    etaSeconds: left === 0 ? 0 : rate > 0 ? Math.ceil(left / rate) : null,
    supernodes: jobs.map(({ url, job }) => ({ url, id: job.id, state: unreachable.has(url) ? 'unreachable' : job.state })),
  };
}
