import { LazybdError } from '../errors.js';
import { VERSION_MAJOR, VERSION_MINOR } from '../format/layer-spec.js';

/** The config blob of a lazybd image (media type application/vnd.lazybd.config.v1+json). */
export interface ImageConfig {
  formatVersion: string;
  virtualSize: number;
  chunkSize: number;
  created?: string;
}

export class ImageConfigError extends LazybdError {
  constructor(message: string) {
    super('E_IMAGE_CONFIG', message, { exitStatus: 3 });
  }
}

export function encodeImageConfig(c: Omit<ImageConfig, 'formatVersion'>): Buffer {
  return Buffer.from(JSON.stringify({ formatVersion: `${VERSION_MAJOR}.${VERSION_MINOR}`, ...c }));
}

export function parseImageConfig(bytes: Buffer): ImageConfig {
  let c: Partial<ImageConfig>;
  try {
    c = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new ImageConfigError('image config is not JSON');
  }
  if (typeof c.formatVersion !== 'string' || Number(c.formatVersion.split('.')[0]) !== VERSION_MAJOR) {
    throw new ImageConfigError(`unsupported image format version ${c.formatVersion}`);
  }
  if (!Number.isSafeInteger(c.virtualSize) || c.virtualSize! < 0) throw new ImageConfigError('image config has no valid virtualSize');
  if (!Number.isSafeInteger(c.chunkSize)) throw new ImageConfigError('image config has no valid chunkSize');
  return c as ImageConfig;
}
