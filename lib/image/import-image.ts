import { rmSync } from 'node:fs';
import { rm, stat } from 'node:fs/promises';
import type { OciStore } from '../store/oci-store.js';
import { createImageFromRaw, type CreateResult } from './create-image.js';
import type { CodecChoice } from './layer-compression.js';
import { QemuImgError, isNbdUri, qemuImgInfo, qemuImgToRaw } from './qemu-img.js';
import type { Progress } from './raw-scanner.js';

export interface ImportResult extends CreateResult {
  format: string;
}

/**
 * `lazybd import`: anything qemu-img reads becomes a one-layer image. The backing chain is
 * flattened into a sparse raw temp file in the store (costs only the data on disk), which then
 * goes through `create`'s path. The temp is removed on every exit, SIGINT/SIGTERM included.
 * Progress: the convert is the first half of `total` (2 × virtual size), the layer the second.
 */
export async function importImage(
  store: OciStore,
  source: string,
  ref: string,
  options: { created: string; chunkSize?: number; compress?: CodecChoice; format?: string; onProgress?: Progress },
): Promise<ImportResult> {
  if (!isNbdUri(source)) {
    await stat(source).catch((e: NodeJS.ErrnoException) => {
      throw new QemuImgError(e.code === 'ENOENT' ? 'E_IMPORT_NOT_FOUND' : 'E_IMPORT_UNREADABLE', `cannot read ${source}: ${e.message}`, { cause: e, exitStatus: 2 });
    });
  }
  const info = await qemuImgInfo(source, options.format);
  const temp = store.tempPath('import');
  const abort = new AbortController();
  // Sync on purpose: the process ends by the same signal right after, so nothing async would run.
  const onSignal = (signal: NodeJS.Signals) => {
    abort.abort();
    rmSync(temp, { force: true });
    process.kill(process.pid, signal);
  };
  const signals = ['SIGINT', 'SIGTERM'] as const;
  for (const s of signals) process.once(s, onSignal);
  try {
    const total = 2 * info.virtualSize;
    // Probed formats are passed on so convert does not probe again (and warn about raw); NBD is raw.
    const format = isNbdUri(source) && !options.format ? undefined : info.format;
    await qemuImgToRaw(source, format, temp, { signal: abort.signal, onPercent: (p) => options.onProgress?.(Math.round((p / 100) * info.virtualSize), total) });
    const onProgress = (done: number) => options.onProgress?.(info.virtualSize + done, total);
    const created = await createImageFromRaw(store, temp, ref, { created: options.created, compress: options.compress, ...(options.chunkSize ? { chunkSize: options.chunkSize } : {}), onProgress });
    return { ...created, format: info.format };
  } finally {
    for (const s of signals) process.off(s, onSignal);
    await rm(temp, { force: true });
  }
}
