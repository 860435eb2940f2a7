import { LazybdError } from '../errors.js';

export class ImageNotFoundError extends LazybdError {
  constructor(ref: string) {
    super('E_IMAGE_NOT_FOUND', `no image ${ref} in the local store`, { exitStatus: 2 });
  }
}

export class BlobNotFoundError extends LazybdError {
  constructor(digest: string) {
    super('E_BLOB_NOT_FOUND', `blob ${digest} is missing from the local store`, { exitStatus: 2 });
  }
}

export class StoreCorruptError extends LazybdError {
  constructor(message: string) {
    super('E_STORE_CORRUPT', message, { exitStatus: 3 });
  }
}

export class StoreLockTimeoutError extends LazybdError {
  constructor(path: string) {
    super('E_STORE_LOCKED', `timed out waiting for the store lock ${path}`);
  }
}
