import { totalmem } from 'node:os';

/**
 * Default bound of the decoded-chunk cache (`--decoded-cache-mib`): a sixteenth of the host's
 * memory, at most 1 GiB. Warm reads of compressed layers keep pace with uncompressed ones only
 * while their decoded working set fits (measured in integration/bench/size: 256 MiB for 300 MiB
 * of data read at random gave 0.79x at 4 KiB and 0.17x for 1 MiB sequential reads, 1 GiB 1.06x
 * and 1.0x); memory is only taken as chunks are read.
 */
export const DEFAULT_DECODED_CACHE_MIB = Math.min(1024, Math.floor(totalmem() / 2 ** 20 / 16));
