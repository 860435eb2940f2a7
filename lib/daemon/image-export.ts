import { LayeredDevice } from '../device/layered-device.js';
import { Upper } from '../device/upper/upper.js';
import type { ExportStatus } from '../control/api.js';
import type { SharedImage } from './shared-image.js';
import { bindUpper } from './upper-binding.js';

export interface ImageExportOptions {
  /** Directory of the writable upper; without one the export is read-only. */
  upperDir?: string;
  readOnly?: boolean;
}

/**
 * One NBD export: a shared image as a block device, with its own upper when writable.
 * Exports of one image (clones) differ only in their uppers.
 */
export class ImageExport {
  private constructor(
    readonly shared: SharedImage,
    readonly device: LayeredDevice,
    readonly upper: Upper | undefined,
  ) {}

  /** Takes a reference on `shared`, released by `close()` (or here, if opening fails). */
  static async open(shared: SharedImage, options: ImageExportOptions = {}): Promise<ImageExport> {
    shared.acquire();
    let upper: Upper | undefined;
    try {
      const { image } = shared;
      if (options.upperDir) {
        await bindUpper(options.upperDir, { ref: image.ref, manifestDigest: image.manifestDescriptor.digest, virtualSize: image.virtualSize });
        upper = await Upper.open(options.upperDir, { virtualSize: image.virtualSize });
      }
      return new ImageExport(shared, new LayeredDevice({ lower: shared.lower, upper, readOnly: options.readOnly }), upper);
    } catch (e) {
      await upper?.close();
      await shared.release();
      throw e;
    }
  }

  status(): Pick<ExportStatus, 'bytesLocal' | 'bytesTotal' | 'sources' | 'prefetch' | 'writable'> {
    return { ...this.shared.status(), writable: !this.device.readOnly };
  }

  /** Flushes and closes the upper, then lets go of the shared image. */
  async close(): Promise<void> {
    try {
      await this.upper?.close();
    } finally {
      await this.shared.release();
    }
  }
}
