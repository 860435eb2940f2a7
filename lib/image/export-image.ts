import { open } from 'node:fs/promises';
import type { LocalImage } from './local-image.js';
import type { Progress } from './raw-scanner.js';

const WINDOW = 8 << 20;

/**
 * `lazybd export`: flattens the stack into a raw file. The file is created sparse at
 * the virtual size and only data pieces are written, so holes and zero extents stay holes.
 */
export async function exportRaw(image: LocalImage, outPath: string, onProgress?: Progress): Promise<void> {
  const out = await open(outPath, 'w');
  try {
    await out.truncate(image.virtualSize);
    const buf = Buffer.allocUnsafe(WINDOW);
    for (let offset = 0; offset < image.virtualSize; offset += WINDOW) {
      const length = Math.min(WINDOW, image.virtualSize - offset);
      for (const piece of image.index.resolve(offset, length)) {
        if (piece.kind !== 'data') continue;
        const layer = image.layers[piece.layer]!;
        await layer.data.readInto(piece.physicalOffset, buf, 0, piece.length);
        let done = 0;
        while (done < piece.length) done += (await out.write(buf, done, piece.length - done, piece.offset + done)).bytesWritten;
      }
      onProgress?.(offset + length, image.virtualSize);
    }
    await out.sync();
  } finally {
    await out.close();
  }
}
