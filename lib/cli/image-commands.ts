import { createImageFromRaw } from '../image/create-image.js';
import { imageCreatedTime } from '../image/created-time.js';
import { importImage } from '../image/import-image.js';
import type { CodecChoice } from '../image/layer-compression.js';
import { exportRaw } from '../image/export-image.js';
import { inspectImage } from '../image/inspect-image.js';
import { LocalImage } from '../image/local-image.js';
import { verifyImage } from '../image/verify-image.js';
import { formatReference, parseReference } from '../oci/reference.js';
import { ImageInUseError, imageUsers } from '../control/image-users.js';
import { OciStore, defaultStoreDir } from '../store/oci-store.js';
import { withProgress } from './progress.js';
import { printResult, type GlobalOptions } from './run-command.js';
import { UsageError } from './usage-error.js';

export function openStore(opts: GlobalOptions): Promise<OciStore> {
  return OciStore.open(opts.store ?? defaultStoreDir());
}

/** A `name:tag` of the local store (a registry ref here is a usage error). */
export function localRef(input: string): string {
  const ref = parseReference(input);
  if (ref.kind !== 'local') throw new UsageError(`${input} names a registry image; this command takes a local name:tag`);
  return formatReference(ref);
}

async function withImage<T>(opts: GlobalOptions, input: string, fn: (image: LocalImage) => Promise<T>): Promise<T> {
  const image = await LocalImage.open(await openStore(opts), localRef(input));
  try {
    return await fn(image);
  } finally {
    await image.close();
  }
}

/** Bytes as MiB with one decimal, for human output. */
export const mib = (n: number) => `${(n / 1048576).toFixed(1)} MiB`;

export async function createCommand(raw: string, input: string, opts: GlobalOptions & { 'chunk-size': number; compress: CodecChoice }): Promise<void> {
  const ref = localRef(input);
  const created = imageCreatedTime();
  const store = await openStore(opts);
  const chunkSize = opts['chunk-size'];
  const r = await withProgress('create', opts, (onProgress) => createImageFromRaw(store, raw, ref, { created, chunkSize, compress: opts.compress, onProgress }));
  printResult(
    opts,
    { ref, manifest: r.manifest.digest, layer: r.layer.digest, layerSize: r.layer.size, virtualSize: r.virtualSize, dataBytes: r.summary.dataBytes, extents: r.summary.extentCount, chunks: r.summary.chunkCount },
    () => `created ${ref}: ${mib(r.virtualSize)} virtual, ${mib(r.summary.dataBytes)} data in ${r.summary.extentCount} extents, layer ${r.layer.digest} (${mib(r.layer.size)})`,
  );
}

export async function importCommand(source: string, input: string, opts: GlobalOptions & { 'chunk-size': number; compress: CodecChoice; format?: string }): Promise<void> {
  const ref = localRef(input);
  const created = imageCreatedTime();
  const store = await openStore(opts);
  const options = { created, chunkSize: opts['chunk-size'], compress: opts.compress, ...(opts.format ? { format: opts.format } : {}) };
  const r = await withProgress('import', opts, (onProgress) => importImage(store, source, ref, { ...options, onProgress }));
  printResult(
    opts,
    { ref, source, format: r.format, manifest: r.manifest.digest, layer: r.layer.digest, layerSize: r.layer.size, virtualSize: r.virtualSize, dataBytes: r.summary.dataBytes, extents: r.summary.extentCount, chunks: r.summary.chunkCount },
    () => `imported ${source} (${r.format}) as ${ref}: ${mib(r.virtualSize)} virtual, ${mib(r.summary.dataBytes)} data in ${r.summary.extentCount} extents, layer ${r.layer.digest} (${mib(r.layer.size)})`,
  );
}

export async function inspectCommand(input: string, opts: GlobalOptions): Promise<void> {
  const report = await withImage(opts, input, async (image) => inspectImage(image));
  printResult(opts, report, () =>
    [
      `image        ${report.ref}`,
      `manifest     ${report.manifestDigest}`,
      `virtual size ${report.virtualSize} (${mib(report.virtualSize)})`,
      `allocated    ${report.allocatedBytes} (${mib(report.allocatedBytes)})`,
      `chunk size   ${report.chunkSize}`,
      `dedup        ${report.dedup.ratio.toFixed(2)}× (${report.dedup.uniqueChunks} of ${report.dedup.chunks} chunks distinct, ${mib(report.dedup.uniqueStoredBytes)} of ${mib(report.dedup.storedBytes)} stored)`,
      `layers (bottom first):`,
      ...report.layers.map(
        (l, i) =>
          `  ${i} ${l.digest} ${mib(l.size)} extents=${l.extents} chunks=${l.chunks} data=${mib(l.dataBytes)} stored=${mib(l.storedBytes)} ` +
          `(zstd ${l.compression.zstd}, lz4 ${l.compression.lz4}, raw ${l.compression.none}) meta=${l.metaBytes}B`,
      ),
    ].join('\n'),
  );
}

export async function exportCommand(input: string, out: string, opts: GlobalOptions): Promise<void> {
  const size = await withImage(opts, input, async (image) => {
    await withProgress('export', opts, (onProgress) => exportRaw(image, out, onProgress));
    return image.virtualSize;
  });
  printResult(opts, { ref: localRef(input), output: out, virtualSize: size }, () => `exported ${localRef(input)} to ${out} (${mib(size)})`);
}

export async function verifyCommand(input: string, opts: GlobalOptions): Promise<void> {
  const r = await withImage(opts, input, (image) => withProgress('verify', opts, (onProgress) => verifyImage(image, onProgress)));
  printResult(opts, { ref: localRef(input), ok: true, ...r }, () => `${localRef(input)}: ${r.chunks} chunks (${mib(r.bytes)}) verified`);
}

export async function imagesCommand(opts: GlobalOptions): Promise<void> {
  const store = await openStore(opts);
  const list = await store.list();
  printResult(
    opts,
    list.map((t) => ({ ref: t.ref, digest: t.descriptor.digest })),
    () => (list.length ? list.map((t) => `${t.ref}\t${t.descriptor.digest}`).join('\n') : '(no images)'),
  );
}

export async function rmCommand(input: string, opts: GlobalOptions & { force?: boolean }): Promise<void> {
  const ref = localRef(input);
  const store = await openStore(opts);
  if (!opts.force) {
    const users = await imageUsers(store.dir, ref);
    if (users.length) throw new ImageInUseError(ref, users);
  }
  const freed = await store.remove(ref);
  printResult(opts, { ref, removed: true, freedBytes: freed }, () => `removed ${ref} (${mib(freed)} freed)`);
}
