import { randomUUID } from 'node:crypto';
import { mkdir, readFile, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { preheatBytesDone, preheatChunksDone, preheatJobs } from '../metrics/metrics.js';
import { parseManifest } from '../oci/manifest.js';
import { MEDIA_TYPE_TRACE } from '../image/trace-blob.js';
import { decodeTrace } from '../source/trace.js';
import type { SourceLogger } from '../source/source-logger.js';
import { writeFileAtomic } from '../store/atomic-file.js';
import type { BlobCatalog } from './blob-catalog.js';
import type { BlobLayout } from './blob-layout.js';
import type { BlobReader } from './blob-reader.js';
import { BadRequestError } from './errors.js';
import type { ManifestCache } from './manifest-cache.js';
import { memberId, rendezvousHome } from './rendezvous.js';
import type { Upstream, Upstreams } from './upstreams.js';

export interface PreheatRequest {
  /** Upstream registry (`?ns=` of the node requests); default the supernode's first. */
  ns?: string;
  repository: string;
  /** Tag or digest. */
  reference: string;
  /**
   * The supernodes the nodes will use (their URLs, as given to `--supernode`) and which of
   * them this is: only the chunks whose rendezvous home is `self` are fetched. Without
   * them, every chunk.
   */
  members?: string[];
  self?: string;
  /** The job fails (it never hangs) when not done by then. Default 3600. */
  timeoutSeconds?: number;
  /** Range requests in flight. Default 4. */
  concurrency?: number;
}

export type PreheatStateName = 'pending' | 'running' | 'done' | 'failed';

export interface PreheatJob {
  id: string;
  request: PreheatRequest;
  state: PreheatStateName;
  createdAt: string;
  startedAt?: string;
  endedAt?: string;
  manifestDigest?: string;
  /** `cached`: already in the supernode when the job looked. `done` includes them. */
  chunks: { total: number; done: number; cached: number; failed: number };
  bytes: { total: number; done: number; fetched: number };
  rateBytesPerSec: number;
  etaSeconds: number | null;
  /** The first errors, per chunk (at most MAX_ERRORS; `chunks.failed` counts them all). */
  errors: { blob: string; chunk: number; message: string }[];
  message?: string;
}

const MAX_ERRORS = 50;
const MAX_ENDED_JOBS = 100;
const SAVE_INTERVAL_MS = 1000;
/** Adjacent chunks fetched in one Range request. */
const MAX_RUN_BYTES = 1 << 20;

interface Work {
  upstream: Upstream;
  repository: string;
  layout: BlobLayout;
  first: number;
  count: number;
  bytes: number;
}

export interface PreheatDeps {
  upstreams: Upstreams;
  manifests: ManifestCache;
  catalog: BlobCatalog;
  reader: BlobReader;
  log: SourceLogger;
}

/**
 * Preheat jobs: each pulls every chunk of one image (its trace's chunks first) into the
 * supernode. A job is saved as `<dir>/<id>.json` while it runs and when it ends, so a
 * supernode restart resumes unfinished jobs (chunks already cached count at once). Asking
 * again for an image whose job is still running returns that job; once the image is
 * cached a new job completes at once. Every job ends, done or failed, within its timeout.
 */
export class PreheatJobs {
  private readonly jobs = new Map<string, PreheatJob>();
  private readonly running = new Map<string, Promise<void>>();
  private closed = false;

  private constructor(
    private readonly dir: string,
    private readonly deps: PreheatDeps,
  ) {}

  static async open(dir: string, deps: PreheatDeps): Promise<PreheatJobs> {
    await mkdir(dir, { recursive: true });
    const jobs = new PreheatJobs(dir, deps);
    const found: PreheatJob[] = [];
    for (const name of await readdir(dir)) {
      if (!name.endsWith('.json')) continue;
      const job = await readFile(join(dir, name), 'utf8').then((t) => JSON.parse(t) as PreheatJob).catch(() => undefined);
      if (job?.id && job.request) found.push(job);
    }
    found.sort((a, b) => a.createdAt.localeCompare(b.createdAt));
    for (const job of found) {
      jobs.jobs.set(job.id, job);
      if (job.state === 'pending' || job.state === 'running') {
        deps.log.warn(`supernode: resuming preheat ${job.id} of ${job.request.repository}:${job.request.reference}`);
        jobs.start(job);
      }
    }
    jobs.countStates();
    return jobs;
  }

  /** Starts a job (on disk before this resolves: it survives a crash from then on), or returns the one still running for the same request. */
  async create(input: unknown): Promise<{ job: PreheatJob; created: boolean }> {
    const request = checkRequest(input);
    this.deps.upstreams.resolve(request.ns);
    const key = requestKey(request);
    for (const job of this.jobs.values()) {
      if ((job.state === 'pending' || job.state === 'running') && requestKey(job.request) === key) return { job, created: false };
    }
    const job: PreheatJob = {
      id: randomUUID(),
      request,
      state: 'pending',
      createdAt: new Date().toISOString(),
      chunks: { total: 0, done: 0, cached: 0, failed: 0 },
      bytes: { total: 0, done: 0, fetched: 0 },
      rateBytesPerSec: 0,
      etaSeconds: null,
      errors: [],
    };
    this.jobs.set(job.id, job);
    await this.save(job);
    this.start(job);
    this.forgetOld();
    return { job, created: true };
  }

  get(id: string): PreheatJob | undefined {
    return this.jobs.get(id);
  }

  list(): PreheatJob[] {
    return [...this.jobs.values()];
  }

  /** Stops starting work; running jobs stay `running` on disk and resume at the next start. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.allSettled(this.running.values());
  }

  private start(job: PreheatJob): void {
    const run = this.run(job)
      .catch((e: Error) => this.end(job, 'failed', e.message))
      .finally(() => {
        this.running.delete(job.id);
        this.countStates();
      });
    this.running.set(job.id, run);
  }

  private async run(job: PreheatJob): Promise<void> {
    const started = Date.now();
    Object.assign(job, { state: 'running', startedAt: new Date(started).toISOString(), chunks: { total: 0, done: 0, cached: 0, failed: 0 }, bytes: { total: 0, done: 0, fetched: 0 }, errors: [] });
    this.countStates();
    await this.save(job);
    const timeoutMs = (job.request.timeoutSeconds ?? 3600) * 1000;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), timeoutMs)));
    const saver = setInterval(() => void this.save(job).catch(() => {}), SAVE_INTERVAL_MS);
    const stop = { now: false };
    try {
      const outcome = await Promise.race([this.fill(job, started, stop), timedOut]);
      if (outcome === 'timeout') {
        stop.now = true;
        return await this.end(job, 'failed', `timed out after ${timeoutMs / 1000} s with ${job.chunks.done} of ${job.chunks.total} chunks in the supernode`);
      }
      if (this.closed && job.chunks.done + job.chunks.failed < job.chunks.total) return;
      if (job.chunks.failed > 0) return await this.end(job, 'failed', `${job.chunks.failed} of ${job.chunks.total} chunks could not be fetched`);
      await this.end(job, 'done');
    } finally {
      stop.now = true;
      clearTimeout(timer);
      clearInterval(saver);
    }
  }

  /** Plans the work (trace first), counts what is cached, then fetches the rest with bounded concurrency. */
  private async fill(job: PreheatJob, started: number, stop: { now: boolean }): Promise<void> {
    const { upstreams, manifests, catalog, reader } = this.deps;
    const { request } = job;
    const upstream = upstreams.resolve(request.ns);
    const manifest = await manifests.get(upstream.ns, upstream.client, request.repository, request.reference);
    job.manifestDigest = manifest.digest;
    catalog.noteManifest(manifest.bytes);
    const image = parseManifest(manifest.bytes);
    const layouts = new Map<string, BlobLayout>();
    for (const d of [image.config, ...image.layers]) layouts.set(d.digest, await catalog.layout(upstream, request.repository, d.digest));

    const members = request.members?.map(memberId);
    const self = request.self === undefined ? -1 : members?.indexOf(memberId(request.self)) ?? -1;
    const mine = (layout: BlobLayout, i: number) => !members || rendezvousHome(members, layout.table.digest(i)) === self;
    const order: [BlobLayout, number][] = [];
    const seen = new Set<string>();
    const add = (layout: BlobLayout, i: number) => {
      const key = `${layout.digest}/${i}`;
      if (seen.has(key) || !mine(layout, i)) return;
      seen.add(key);
      order.push([layout, i]);
    };
    const trace = image.layers.find((d) => d.mediaType === MEDIA_TYPE_TRACE);
    if (trace) {
      const bytes = await collect(reader.read(upstream, request.repository, layouts.get(trace.digest)!, 0, trace.size));
      try {
        const t = decodeTrace(bytes.toString('utf8'));
        for (const [layer, chunk] of t.entries) {
          const layout = layouts.get(t.layers[layer]!);
          if (layout?.kind === 'layer' && chunk < layout.table.count) add(layout, chunk);
        }
      } catch (e) {
        this.deps.log.warn(`preheat ${job.id}: ignoring the image's trace: ${(e as Error).message}`);
      }
    }
    // Other blobs (config, trace, foreign layers) were fetched whole when their layout was learnt.
    for (const layout of layouts.values()) if (layout.kind === 'layer') for (let i = 0; i < layout.table.count; i++) add(layout, i);

    job.chunks.total = order.length;
    job.bytes.total = order.reduce((n, [l, i]) => n + l.table.length(i), 0);
    const work: Work[] = [];
    for (const [layout, i] of order) {
      const bytes = layout.table.length(i);
      if (reader.isLocal(upstream, request.repository, layout, i)) {
        job.chunks.cached++;
        this.progress(job, 1, bytes, false, started);
        continue;
      }
      const last = work[work.length - 1];
      if (last && last.layout === layout && last.first + last.count === i && last.bytes + bytes <= MAX_RUN_BYTES) {
        last.count++;
        last.bytes += bytes;
      } else {
        work.push({ upstream, repository: request.repository, layout, first: i, count: 1, bytes });
      }
    }
    const worker = async (): Promise<void> => {
      for (let w = work.shift(); w && !stop.now && !this.closed; w = work.shift()) {
        try {
          await reader.warm(w.upstream, w.repository, w.layout, w.first, w.count);
          this.progress(job, w.count, w.bytes, true, started);
        } catch (e) {
          job.chunks.failed += w.count;
          for (let i = w.first; i < w.first + w.count && job.errors.length < MAX_ERRORS; i++) job.errors.push({ blob: w.layout.digest, chunk: i, message: (e as Error).message });
        }
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, request.concurrency ?? 4) }, worker));
  }

  private progress(job: PreheatJob, chunks: number, bytes: number, fetched: boolean, started: number): void {
    job.chunks.done += chunks;
    job.bytes.done += bytes;
    if (fetched) job.bytes.fetched += bytes;
    preheatChunksDone.inc(chunks);
    preheatBytesDone.inc(bytes);
    const seconds = (Date.now() - started) / 1000;
    job.rateBytesPerSec = seconds > 0 ? Math.round(job.bytes.fetched / seconds) : 0;
    job.etaSeconds = job.rateBytesPerSec > 0 ? Math.ceil((job.bytes.total - job.bytes.done) / job.rateBytesPerSec) : null;
  }

  private async end(job: PreheatJob, state: 'done' | 'failed', message?: string): Promise<void> {
    Object.assign(job, { state, endedAt: new Date().toISOString(), message, etaSeconds: state === 'done' ? 0 : null });
    if (state === 'failed') this.deps.log.warn(`preheat ${job.id} of ${job.request.repository}:${job.request.reference} failed: ${message}`);
    this.countStates();
    await this.save(job);
  }

  private save(job: PreheatJob): Promise<void> {
    return writeFileAtomic(join(this.dir, `${job.id}.json`), JSON.stringify(job));
  }

  /** Keeps the most recent ended jobs only, in memory and on disk. */
  private forgetOld(): void {
    const ended = [...this.jobs.values()].filter((j) => j.state === 'done' || j.state === 'failed');
    for (const job of ended.slice(0, Math.max(0, ended.length - MAX_ENDED_JOBS))) {
      this.jobs.delete(job.id);
      void rm(join(this.dir, `${job.id}.json`), { force: true });
    }
  }

  private countStates(): void {
    const counts: Record<PreheatStateName, number> = { pending: 0, running: 0, done: 0, failed: 0 };
    for (const j of this.jobs.values()) counts[j.state]++;
    for (const [state, n] of Object.entries(counts)) preheatJobs.set({ state }, n);
  }
}

function checkRequest(input: unknown): PreheatRequest {
  const r = (input ?? {}) as Partial<PreheatRequest>;
  const str = (v: unknown) => typeof v === 'string' && v.length > 0;
  if (!str(r.repository) || !/^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:\/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$/.test(r.repository!)) throw new BadRequestError('preheat needs a valid "repository"', 'NAME_INVALID');
  if (!str(r.reference)) throw new BadRequestError('preheat needs a "reference" (tag or digest)');
  if (r.ns !== undefined && !str(r.ns)) throw new BadRequestError('"ns" must be a registry host[:port]');
  if (r.members !== undefined && (!Array.isArray(r.members) || !r.members.every(str))) throw new BadRequestError('"members" must be a list of supernode URLs');
  if ((r.members === undefined) !== (r.self === undefined)) throw new BadRequestError('"members" and "self" go together');
  try {
    if (r.members && !r.members.map(memberId).includes(memberId(r.self!))) throw new BadRequestError('"self" must be one of "members"');
  } catch (e) {
    throw e instanceof BadRequestError ? e : new BadRequestError(`"members"/"self" must be URLs: ${(e as Error).message}`);
  }
  for (const k of ['timeoutSeconds', 'concurrency'] as const) {
    const v = r[k];
    if (v !== undefined && !(typeof v === 'number' && Number.isFinite(v) && v > 0 && (k === 'timeoutSeconds' || Number.isInteger(v)))) throw new BadRequestError(`"${k}" must be a positive number`);
  }
  if (r.concurrency !== undefined && r.concurrency > 64) throw new BadRequestError('"concurrency" is at most 64');
  return { ns: r.ns, repository: r.repository!, reference: r.reference!, members: r.members, self: r.self, timeoutSeconds: r.timeoutSeconds, concurrency: r.concurrency };
}

function requestKey(r: PreheatRequest): string {
  return JSON.stringify([r.ns ?? '', r.repository, r.reference, r.members?.map(memberId).sort() ?? [], r.self ? memberId(r.self) : '']);
}

async function collect(parts: AsyncIterable<Buffer>): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const p of parts) out.push(p);
  return Buffer.concat(out);
}
