import { ImageLower } from '../device/image-lower.js';
import { LayeredDevice } from '../device/layered-device.js';
import { Upper } from '../device/upper/upper.js';
import { LazybdError } from '../errors.js';
import { LocalImage } from '../image/local-image.js';
import type { OciStore } from '../store/oci-store.js';
import { bindUpper } from './upper-binding.js';
import { lockUpper } from './upper-lock.js';

export interface ImageExportOptions {
  /** Directory of the writable upper; without one the export is read-only. */
  upperDir?: string;
  readOnly?: boolean;
}

/** An image of the store opened as a block device: merged layers, plus an upper when writable. */
export class ImageExport {
  private constructor(
    readonly image: LocalImage,
    readonly device: LayeredDevice,
    private readonly upper: Upper | undefined,
    private readonly unlock: (() => Promise<void>) | undefined,
  ) {}

  static async open(store: OciStore, ref: string, options: ImageExportOptions = {}): Promise<ImageExport> {
    const image = await LocalImage.open(store, ref);
    let upper: Upper | undefined;
    let unlock: (() => Promise<void>) | undefined;
    try {
      if (options.upperDir) {
        if (image.virtualSize % 512 !== 0) {
          throw new LazybdError('E_UPPER_UNALIGNED', `${ref} is ${image.virtualSize} bytes, not whole sectors: it can be served read-only only`, { exitStatus: 2 });
        }
        unlock = await lockUpper(options.upperDir);
        await bindUpper(options.upperDir, { ref, manifestDigest: image.manifestDescriptor.digest, virtualSize: image.virtualSize });
        upper = await Upper.open(options.upperDir, { virtualSize: image.virtualSize });
      }
      const lower = new ImageLower(image.index, image.layers.map((l) => l.file), image.virtualSize);
      const device = new LayeredDevice({ lower, upper, readOnly: options.readOnly });
      return new ImageExport(image, device, upper, unlock);
    } catch (e) {
      await upper?.close();
      await unlock?.();
      await image.close();
      throw e;
    }
  }

  /** Flushes the upper and releases every file. */
  async close(): Promise<void> {
    await this.upper?.close();
    await this.unlock?.();
    await this.image.close();
  }
}
