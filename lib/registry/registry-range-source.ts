import type { BlobRangeSource } from '../source/blob-range-source.js';
import type { RegistryClient } from './registry-client.js';

/** The registry as the last link of the chunk source chain: HTTP Range reads of one repository's blobs. */
export class RegistryRangeSource implements BlobRangeSource {
  readonly name = 'registry';

  constructor(
    private readonly client: RegistryClient,
    private readonly repository: string,
  ) {}

  async fetch(blob: string, offset: number, length: number, signal: AbortSignal): Promise<Buffer> {
    return this.client.readBlobRange(this.repository, blob, offset, length, signal);
  }
}
