/**
 * Decoders for the structured option payloads the client sends during the
 * handshake. Each returns null when the payload is syntactically invalid
 * (the caller answers NBD_REP_ERR_INVALID).
 */

export interface InfoRequest {
  name: string;
  infos: number[];
}

/** NBD_OPT_INFO / NBD_OPT_GO: u32 name length, name, u16 count, u16 × count. */
export function decodeInfoRequest(data: Buffer): InfoRequest | null {
  if (data.length < 6) return null;
  const nameLength = data.readUInt32BE(0);
  if (nameLength > data.length - 6) return null;
  const name = data.toString('utf8', 4, 4 + nameLength);
  const count = data.readUInt16BE(4 + nameLength);
  if (data.length !== 6 + nameLength + 2 * count) return null;
  const infos: number[] = [];
  for (let i = 0, at = 6 + nameLength; i < count; i++, at += 2) infos.push(data.readUInt16BE(at));
  return { name, infos };
}

export interface MetaContextRequest {
  name: string;
  queries: string[];
}

/** NBD_OPT_{LIST,SET}_META_CONTEXT: u32 name length, name, u32 count, (u32 length, query) × count. */
export function decodeMetaContextRequest(data: Buffer): MetaContextRequest | null {
  if (data.length < 8) return null;
  const nameLength = data.readUInt32BE(0);
  if (nameLength > data.length - 8) return null;
  const name = data.toString('utf8', 4, 4 + nameLength);
  let at = 4 + nameLength;
  const count = data.readUInt32BE(at);
  at += 4;
  const queries: string[] = [];
  for (let i = 0; i < count; i++) {
    if (at + 4 > data.length) return null;
    const length = data.readUInt32BE(at);
    at += 4;
    if (length > data.length - at) return null;
    queries.push(data.toString('utf8', at, at + length));
    at += length;
  }
  return at === data.length ? { name, queries } : null;
}
