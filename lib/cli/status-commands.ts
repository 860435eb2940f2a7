import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { lockDir } from '../daemon/dir-lock.js';
import { openLayerFromMeta } from '../format/meta-random-access.js';
import { attachTrace } from '../image/attach-trace.js';
import { parseManifest } from '../oci/manifest.js';
import { ChunkCache } from '../source/chunk-cache.js';
import { localRef, mib, openStore } from './image-commands.js';
import { withProgress } from './progress.js';
import { printResult, type GlobalOptions } from './run-command.js';


export async function traceAttachCommand(input: string, file: string, opts: GlobalOptions): Promise<void> {
  const ref = localRef(input);
  const r = await attachTrace(await openStore(opts), ref, await readFile(file, 'utf8'));
  printResult(opts, { ref, manifest: r.manifest.digest, trace: r.trace.digest, entries: r.entries }, () => `attached a trace of ${r.entries} chunks to ${ref} (${r.manifest.digest})`);
}

/**
 * `lazybd cache gc`: drops chunks no stored image uses, checks every chunk's digest
 * (corrupt ones are removed), and trims the cache to --max-size GiB.
 */
export async function cacheGcCommand(opts: GlobalOptions & { 'cache-dir'?: string; 'max-size'?: number }): Promise<void> {
  const store = await openStore(opts);
  const dir = opts['cache-dir'] ?? join(store.dir, 'chunk-cache');
  const unlock = await lockDir(dir, 'E_CACHE_IN_USE', 'chunk cache');
  try {
    const used = new Set<string>();
    for (const t of await store.list()) {
      const manifest = parseManifest(await store.readBlob(t.descriptor.digest));
      for (const l of manifest.layers) {
        const meta = await store.readLayerMeta(l.digest);
        if (meta) for (const hex of await chunkDigestsOf(l.size, meta)) used.add(hex);
      }
    }
    const maxBytes = opts['max-size'] === undefined ? Infinity : opts['max-size'] * 2 ** 30;
    const cache = await ChunkCache.open(dir, { maxBytes });
    try {
      const report = await withProgress('gc', opts, async () => cache.gc({ keep: (hex) => used.has(hex), verify: true, maxBytes }));
      printResult(opts, report, () => `cache ${dir}: removed ${report.removedFiles} chunks (${mib(report.removedBytes)}, ${report.corruptFiles} corrupt), kept ${report.keptFiles} (${mib(report.keptBytes)})`);
    } finally {
      await cache.close();
    }
  } finally {
    await unlock();
  }
}

/** The chunk digests (hex) a lazily pulled layer's stored metadata lists. */
async function chunkDigestsOf(blobSize: number, meta: Buffer): Promise<string[]> {
  const reader = await openLayerFromMeta(blobSize, meta);
  return Array.from({ length: reader.chunks.count }, (_, i) => reader.chunks.digest(i).toString('hex'));
}
