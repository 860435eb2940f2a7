import { LazybdError } from '../errors.js';

/** A layer blob that is not a valid lazybd layer. `code` says which rule it broke. */
export class MalformedLayerError extends LazybdError {
  constructor(code: MalformedLayerCode, message: string) {
    super(code, message, { exitStatus: 3 });
  }
}

export type MalformedLayerCode =
  | 'E_LAYER_TRUNCATED'
  | 'E_LAYER_BAD_MAGIC'
  | 'E_LAYER_BAD_VERSION'
  | 'E_LAYER_BAD_FIELD'
  | 'E_LAYER_OUT_OF_BOUNDS'
  | 'E_LAYER_EXTENT_ORDER'
  | 'E_LAYER_META_DIGEST';

/** A chunk whose bytes do not hash to the digest the index holds. */
export class ChunkDigestError extends LazybdError {
  constructor(
    readonly chunkIndex: number,
    readonly physicalOffset: number,
    message: string,
  ) {
    super('E_CHUNK_DIGEST', message, { exitStatus: 4 });
  }
}

/** Misuse of the layer writer (out-of-order or misaligned extents). */
export class LayerWriteError extends LazybdError {
  constructor(message: string) {
    super('E_LAYER_WRITE', message);
  }
}

/** A codec name (`--compress`) lazybd does not accept. */
export class CodecError extends LazybdError {
  constructor(message: string) {
    super('E_BAD_CODEC', message, { exitStatus: 2 });
  }
}

/** A codec whose native encoder did not load: lazybd has no pure-JS encoders to fall back on. */
export class CodecUnavailableError extends LazybdError {
  constructor(
    readonly codec: string,
    message: string,
  ) {
    super('E_CODEC_UNAVAILABLE', message, { exitStatus: 2 });
  }
}

/** A chunk's stored bytes that do not decode to exactly the chunk's data. */
export class ChunkDecodeError extends LazybdError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('E_CHUNK_DECODE', message, { cause: options?.cause, exitStatus: 4 });
  }
}
