/** Our policy values (not spec constants): block sizes we advertise and per-connection bounds. */

/** Advertised in NBD_INFO_BLOCK_SIZE: any byte alignment works, 4 KiB is efficient, 32 MiB per READ/WRITE. */
export const MIN_BLOCK_SIZE = 1;
export const PREFERRED_BLOCK_SIZE = 4096;
export const MAX_PAYLOAD = 32 * 1024 * 1024;

/** Longest option payload accepted during the handshake; longer is treated as hostile and closes. */
export const MAX_OPTION_LENGTH = 64 * 1024;

/** Default cap on in-flight request payload plus queued reply bytes per connection. */
export const DEFAULT_CONNECTION_BUFFER = 64 * 1024 * 1024;

/** A client must finish option haggling within this time. */
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 30_000;
