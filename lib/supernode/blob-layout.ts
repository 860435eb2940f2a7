import { createHash } from 'node:crypto';
import { ChunkTable } from '../format/chunk-table.js';
import { openLayerFromMeta } from '../format/meta-random-access.js';

/** Pieces a whole (non-lazybd) blob is cut into on the supernode: big enough for few files, small enough to re-fetch one. */
export const PIECE_SIZE = 1 << 20;

/**
 * How a blob's bytes are made up on the supernode, with a digest for every one of them:
 * `head` (bytes before the data region), the data region as verified chunks (`table`), and
 * `tail` (bytes after it).
 * - `layer`: a lazybd layer. The chunks are the layer's own; head is its header, tail its
 *   metadata (index, chunk table, trailer), both checked against the trailer's meta digest.
 * - `whole`: any other blob (config, trace, foreign layer), downloaded once and checked
 *   against its digest, then cut into PIECE_SIZE pieces digested by the supernode itself.
 */
export interface BlobLayout {
  digest: string;
  size: number;
  kind: 'layer' | 'whole';
  head: Buffer;
  table: ChunkTable;
  tail: Buffer;
}

const VERSION = 1;

interface LayoutFile {
  version: number;
  digest: string;
  size: number;
  kind: 'layer' | 'whole';
  head: string;
  tail: string;
  /** Whole blobs only: the pieces' chunk table. */
  table?: string;
  /** sha256 over the fields above: a layout that rotted on disk is learnt again, never trusted. */
  check: string;
}

export function wholeBlobLayout(digest: string, size: number, pieceDigests: Buffer): BlobLayout {
  const table = ChunkTable.decode(ChunkTable.encode(pieceDigests, PIECE_SIZE, size), PIECE_SIZE, 0, size);
  return { digest, size, kind: 'whole', head: Buffer.alloc(0), table, tail: Buffer.alloc(0) };
}

/** A lazybd layer's layout from its header and metadata tail; throws a MalformedLayerError when they do not hold together. */
export async function layerBlobLayout(digest: string, size: number, header: Buffer, meta: Buffer): Promise<BlobLayout> {
  const reader = await openLayerFromMeta(size, meta, header);
  await reader.checkHeader();
  return { digest, size, kind: 'layer', head: header, table: reader.chunks, tail: meta };
}

export function encodeLayout(l: BlobLayout): string {
  const fields = { version: VERSION, digest: l.digest, size: l.size, kind: l.kind, head: l.head.toString('base64'), tail: l.tail.toString('base64'), ...(l.kind === 'whole' ? { table: l.table.encoded.toString('base64') } : {}) };
  return JSON.stringify({ ...fields, check: checksum(fields) } satisfies LayoutFile);
}

/** The layout a file holds, or undefined if it is not one this version wrote intact. */
export async function decodeLayout(text: string, digest: string): Promise<BlobLayout | undefined> {
  let f: LayoutFile;
  try {
    f = JSON.parse(text) as LayoutFile;
  } catch {
    return undefined;
  }
  const { check, ...fields } = f;
  if (f.version !== VERSION || f.digest !== digest || check !== checksum(fields)) return undefined;
  const head = Buffer.from(f.head, 'base64');
  const tail = Buffer.from(f.tail, 'base64');
  try {
    if (f.kind === 'layer') return await layerBlobLayout(digest, f.size, head, tail);
    const table = ChunkTable.decode(Buffer.from(f.table ?? '', 'base64'), PIECE_SIZE, 0, f.size);
    return { digest, size: f.size, kind: 'whole', head, table, tail };
  } catch {
    return undefined;
  }
}

function checksum(fields: Omit<LayoutFile, 'check'>): string {
  return createHash('sha256').update(JSON.stringify(fields)).digest('hex');
}
