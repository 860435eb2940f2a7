import { ChunkCompressor } from '../format/chunk-compressor.js';
import type { CodecChoice } from '../format/chunk-codec.js';
import { DEFAULT_ZSTD_LEVEL } from '../format/layer-spec.js';

export type { CodecChoice } from '../format/chunk-codec.js';

/** What `create`, `import` and `commit` compress with unless told: see format-spec/layer-v1.md §Compression. */
export const DEFAULT_CODEC: CodecChoice = { codec: 'zstd', level: DEFAULT_ZSTD_LEVEL };

/** Runs `write` with a compressor for `choice` (none for `none`), closing its workers afterwards. */
export async function withCompressor<T>(choice: CodecChoice | undefined, write: (compressor: ChunkCompressor | undefined) => Promise<T>): Promise<T> {
  if (!choice || choice.codec === 'none') return write(undefined);
  const compressor = new ChunkCompressor(choice);
  try {
    return await write(compressor);
  } finally {
    await compressor.close();
  }
}
