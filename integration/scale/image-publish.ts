// Puts the test image in the registry: create, push, record the start-up trace by
// replaying the reads once through a lazy serve, attach it, push again.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ChunkTable } from '../../lib/format/chunk-table.js';
import { OciStore } from '../../lib/store/oci-store.js';
import { chunkTables } from '../support/chunk-tables.js';
import { firstJsonLine, runLazybd, spawnLazybd } from './lazybd-process.js';
import type { SourceImage } from './test-image.js';
import type { Datacenter, Host } from './topology.js';
import { replayReads } from './trace-replay.js';

const LOCAL_REF = 'scale/disk:v1';
const REPOSITORY = 'scale/disk';
const TAG = 'v1';

export interface PublishedImage {
  /** `repository:tag`; prefix a registry host:port for a ref. */
  path: string;
  chunkSize: number;
  /** Bytes of the layer blobs. */
  layerBytes: number;
  /** Bytes a full copy moves: manifest, config, layers, trace. */
  imageBytes: number;
  traceChunks: number;
  /** Bytes of the distinct chunks the start-up reads touch. */
  workingSetBytes: number;
}

/** What `lazybd inspect --json` reports. */
export interface InspectReport {
  chunkSize: number;
  layers: { digest: string; size: number; chunks: number; chunkSize: number; dataBytes: number }[];
}

/**
 * Stored bytes of the distinct chunks a trace names: the working set it records, as a lazy
 * reader moves it (compressed chunks count at their stored size).
 */
export function traceBytes(tables: readonly ChunkTable[], entries: [layer: number, chunk: number][]): number {
  const seen = new Set<string>();
  let bytes = 0;
  for (const [layer, chunk] of entries) {
    const t = tables[layer]!;
    const hex = t.digest(chunk).toString('hex');
    if (seen.has(hex)) continue;
    seen.add(hex);
    bytes += t.length(chunk);
  }
  return bytes;
}

export async function publishImage(dc: Datacenter, control: Host, registry: string, source: SourceImage, dir: string, chunkSize: number, timeoutMs: number): Promise<PublishedImage> {
  const origin = { LAZYBD_STORE: join(dir, 'origin') };
  const remote = `${registry}/${REPOSITORY}:${TAG}`;
  await runLazybd(dc, control, ['create', source.rawPath, LOCAL_REF, '--chunk-size', String(chunkSize)], origin, timeoutMs);
  await runLazybd(dc, control, ['push', LOCAL_REF, remote, '--plain-http', '--json'], origin, timeoutMs);

  const traceFile = join(dir, 'trace.json');
  const recorder = spawnLazybd(dc, control, ['serve', remote, '--plain-http', '--json', '--prefetch-rate', '0', '--socket', join(dir, 'recorder.sock'), '--export', 'disk', '--record-trace', traceFile], {
    LAZYBD_STORE: join(dir, 'recorder'),
    XDG_RUNTIME_DIR: dir,
  });
  const deadline = setTimeout(() => void recorder.stop(1000), timeoutMs);
  try {
    await firstJsonLine(recorder, 'trace recorder', timeoutMs);
    const r = await replayReads(join(dir, 'recorder.sock'), 'disk', source.reads, source.readSha256);
    if (r.readErrors || r.mismatches || r.failure) throw new Error(`recording the trace: ${JSON.stringify(r)}\n${recorder.output()}`);
  } finally {
    clearTimeout(deadline);
    await recorder.stop(10_000);
  }
  await runLazybd(dc, control, ['trace', 'attach', LOCAL_REF, traceFile, '--json'], origin, timeoutMs);
  await runLazybd(dc, control, ['push', LOCAL_REF, remote, '--plain-http', '--json'], origin, timeoutMs);

  const report = JSON.parse(await runLazybd(dc, control, ['inspect', LOCAL_REF, '--json'], origin, timeoutMs)) as InspectReport;
  const trace = JSON.parse(await readFile(traceFile, 'utf8')) as { entries: [number, number][] };
  const layerBytes = report.layers.reduce((n, l) => n + l.size, 0);
  return {
    path: `${REPOSITORY}:${TAG}`,
    chunkSize: report.chunkSize,
    layerBytes,
    imageBytes: await fullCopyBytes(origin.LAZYBD_STORE),
    traceChunks: trace.entries.length,
    workingSetBytes: traceBytes(await chunkTables(origin.LAZYBD_STORE, LOCAL_REF), trace.entries),
  };
}

/** Manifest, config, layers and trace: what a full copy of the image moves. */
async function fullCopyBytes(storeDir: string): Promise<number> {
  const store = await OciStore.open(storeDir);
  const { descriptor, manifest } = await store.resolve(LOCAL_REF);
  return descriptor.size + manifest.config.size + manifest.layers.reduce((n, l) => n + l.size, 0);
}
