import { createHash, type Hash } from 'node:crypto';
import type { ChunkCompressor } from './chunk-compressor.js';
import { ChunkTable } from './chunk-table.js';
import { CompressingDataWriter } from './compressing-data-writer.js';
import { LayerWriteError } from './errors.js';
import { ExtentKind } from './extent.js';
import { encodeExtentIndex } from './extent-index.js';
import { ExtentListBuilder } from './extent-list-builder.js';
import { encodeHeader } from './header.js';
import { HEADER_SIZE, SECTOR_SIZE, TRAILER_SIZE, VERSION_MINOR, VERSION_MINOR_COMPRESSED, isValidChunkSize } from './layer-spec.js';
import type { ByteSink } from './random-access.js';
import { encodeTrailer } from './trailer.js';

export interface LayerWriterOptions {
  virtualSize: number;
  chunkSize: number;
  /**
   * Hashes whole chunks elsewhere (the thread pool), answering 32 bytes a chunk in order, while the
   * caller's thread goes on (the sink hashes the whole blob there); the bytes stay unchanged until it
   * settles, as addData's promise includes it. Without it chunks are hashed inline.
   */
  hashChunks?: (data: Buffer, chunkSize: number) => Promise<Buffer>;
  /**
   * Compresses each chunk (stored raw where that does not make it smaller); the layer is then
   * written as version 1.2. Without it chunks are stored as they are, and the layer is 1.1.
   */
  compressor?: ChunkCompressor;
}

export interface LayerSummary {
  size: number;
  /** Where the metadata (index + chunk table + trailer) starts, and its length to the end of the blob. */
  metaOffset: number;
  metaLength: number;
  metaDigest: Buffer;
  extentCount: number;
  chunkCount: number;
  dataLength: number;
  /** Bytes the data region takes in the blob (below dataLength when chunks compress). */
  storedLength: number;
  /** Virtual bytes covered by data extents. */
  dataBytes: number;
  /** Virtual bytes covered by zero extents. */
  zeroBytes: number;
}

/**
 * Streams one layer blob: header, then data as extents arrive (in increasing virtual
 * order), then index, chunk table and trailer. Memory holds the index and one digest
 * per chunk, never the data. The blob is a function of its options and extents alone
 * (no uuid, no clock), so the same input always gives the same digest.
 */
export class LayerWriter {
  private readonly extents = new ExtentListBuilder();
  /** Chunk digests back to back: 32 bytes a chunk, no per-chunk objects. */
  private digests = Buffer.alloc(32 * 1024);
  private chunkCount = 0;
  private chunkHash: Hash = createHash('sha256');
  private chunkFill = 0;
  /** Chunk hashing handed to options.hashChunks and not yet landed in `digests`. */
  private readonly hashing = new Set<Promise<void>>();
  private dataLength = 0;
  private virtualEnd = 0;
  private dataBytes = 0;
  private zeroBytes = 0;
  private headerWritten: Promise<void> | null = null;
  private finished = false;
  /** Takes the data when chunks are compressed (then nothing is hashed here). */
  private readonly compressing: CompressingDataWriter | undefined;
  private readonly versionMinor: number;
  /** Window (virtualOffset / chunkSize) of the last data byte written; -1 before any. */
  private lastWindow = -1;

  constructor(
    private readonly sink: ByteSink,
    private readonly options: LayerWriterOptions,
  ) {
    if (!isValidChunkSize(options.chunkSize)) throw new LayerWriteError(`invalid chunk size ${options.chunkSize}: a power of two from 4 KiB to 16 MiB`);
    if (!Number.isSafeInteger(options.virtualSize) || options.virtualSize < 0) throw new LayerWriteError(`invalid virtual size ${options.virtualSize}`);
    this.compressing = options.compressor ? new CompressingDataWriter(sink, options.compressor, options.chunkSize) : undefined;
    this.versionMinor = options.compressor ? VERSION_MINOR_COMPRESSED : VERSION_MINOR;
  }

  /**
   * Appends data for [virtualOffset, virtualOffset + data.length). Offsets are sector
   * aligned; so is the length, except for a last extent ending exactly at the virtual size,
   * which is padded with zeroes to a whole sector. Everything but the sink's write happens
   * before this returns, so a caller may issue the next addData without waiting (the sink
   * then has several writes in flight; it places them in call order).
   */
  addData(virtualOffset: number, data: Buffer): Promise<void> {
    if (data.length === 0) return Promise.resolve();
    const end = virtualOffset + data.length;
    try {
      this.checkRange(virtualOffset, end);
      if (data.length % SECTOR_SIZE !== 0 && end !== this.options.virtualSize) throw new LayerWriteError(`data at ${virtualOffset} has a partial sector and does not end the device`);
    } catch (e) {
      return Promise.reject(e);
    }
    if (data.length % SECTOR_SIZE !== 0) data = Buffer.concat([data, Buffer.alloc(SECTOR_SIZE - (data.length % SECTOR_SIZE))]);
    this.start();
    if (this.compressing) {
      const padding = this.windowPadding(virtualOffset);
      const padded = this.compressing.addZeros(padding);
      this.dataLength += padding;
      this.extents.push(virtualOffset, data.length, HEADER_SIZE + this.dataLength, ExtentKind.Data);
      this.dataLength += data.length;
      this.dataBytes += end - virtualOffset;
      this.virtualEnd = virtualOffset + data.length;
      this.lastWindow = Math.floor((this.virtualEnd - 1) / this.options.chunkSize);
      return Promise.all([padded, this.compressing.add(data)]).then(noop);
    }
    this.extents.push(virtualOffset, data.length, HEADER_SIZE + this.dataLength, ExtentKind.Data);
    const hashed = this.hashIntoChunks(data);
    const written = this.sink.write(data);
    this.dataLength += data.length;
    this.dataBytes += end - virtualOffset;
    this.virtualEnd = virtualOffset + data.length;
    return hashed ? Promise.all([written, hashed]).then(noop) : written;
  }

  /**
   * Zero bytes to put in the data before data at `virtualOffset` (1.2, window-aligned layout):
   * the data of each aligned virtual window of chunk_size bytes fills one chunk at its place in
   * the window, holes zero-filled. So a window holding the same bytes in two images is the same
   * chunk (same digest), whatever the rest of either image holds; packed back to back, one
   * extent more or less early in the image shifts every later chunk. The zeroes compress away.
   */
  private windowPadding(virtualOffset: number): number {
    const size = this.options.chunkSize;
    const window = Math.floor(virtualOffset / size);
    const inWindow = virtualOffset - window * size;
    // The slot the data goes in: the current chunk's if it continues the last window, else the next one.
    const slot = window === this.lastWindow ? Math.floor(this.dataLength / size) * size : Math.ceil(this.dataLength / size) * size;
    return slot + inWindow - this.dataLength;
  }

  /** Records [virtualOffset, +length) as zero: it reads as zeroes and masks lower layers. */
  addZero(virtualOffset: number, length: number): void {
    if (length === 0) return;
    const end = Math.min(virtualOffset + length, this.options.virtualSize);
    this.checkRange(virtualOffset, end);
    const sectors = Math.ceil((end - virtualOffset) / SECTOR_SIZE) * SECTOR_SIZE;
    this.extents.push(virtualOffset, sectors, 0, ExtentKind.Zero);
    this.zeroBytes += end - virtualOffset;
    this.virtualEnd = virtualOffset + sectors;
  }

  async finish(): Promise<LayerSummary> {
    this.start();
    this.finished = true;
    await this.headerWritten;
    let table: Buffer;
    let storedLength = this.dataLength;
    if (this.compressing) {
      const stored = await this.compressing.finish();
      table = ChunkTable.encode(stored.digests, this.options.chunkSize, this.dataLength, stored);
      storedLength = stored.storedLength;
      this.chunkCount = stored.lengths.length;
    } else {
      if (this.chunkFill > 0) this.pushDigest();
      await Promise.all([...this.hashing]);
      table = ChunkTable.encode(this.digests.subarray(0, this.chunkCount * 32), this.options.chunkSize, this.dataLength);
    }
    const dataOffset = HEADER_SIZE;
    const index = encodeExtentIndex(this.extents.finish());
    const metaDigest = createHash('sha256').update(index).update(table).digest();
    const indexOffset = dataOffset + storedLength;
    const trailer = encodeTrailer({
      virtualSize: this.options.virtualSize,
      chunkSize: this.options.chunkSize,
      dataOffset,
      dataLength: this.dataLength,
      indexOffset,
      extentCount: index.length / 24,
      chunkTableOffset: indexOffset + index.length,
      chunkCount: this.chunkCount,
      metaDigest,
      versionMinor: this.versionMinor,
    });
    await this.sink.write(Buffer.concat([index, table, trailer]));
    const metaLength = index.length + table.length + TRAILER_SIZE;
    return {
      size: indexOffset + metaLength,
      metaOffset: indexOffset,
      metaLength,
      metaDigest,
      extentCount: index.length / 24,
      chunkCount: this.chunkCount,
      dataLength: this.dataLength,
      storedLength,
      dataBytes: this.dataBytes,
      zeroBytes: this.zeroBytes,
    };
  }

  /** Issues the header write before the first data (synchronously, so it is the sink's first write). */
  private start(): void {
    if (this.headerWritten) return;
    this.headerWritten = this.sink.write(encodeHeader({ ...this.options, versionMinor: this.versionMinor }));
    // finish() awaits it; until then a failure must not count as unhandled (addData's own promise does not carry it).
    this.headerWritten.catch(() => undefined);
  }

  private checkRange(start: number, end: number): void {
    if (this.finished) throw new LayerWriteError('layer already finished');
    if (start % SECTOR_SIZE !== 0) throw new LayerWriteError(`extent at ${start} is not sector aligned`);
    if (start < this.virtualEnd) throw new LayerWriteError(`extent at ${start} is out of order (previous ended at ${this.virtualEnd})`);
    if (end > this.options.virtualSize) throw new LayerWriteError(`extent [${start}, ${end}) is past the virtual size ${this.options.virtualSize}`);
  }

  /** Hashes `data` into the chunk table; a promise when whole chunks of it went to options.hashChunks. */
  private hashIntoChunks(data: Buffer): Promise<void> | undefined {
    const size = this.options.chunkSize;
    let hashed: Promise<void> | undefined;
    let at = 0;
    while (at < data.length) {
      const whole = Math.floor((data.length - at) / size) * size;
      if (this.chunkFill === 0 && whole > 0 && this.options.hashChunks) {
        hashed = this.hashElsewhere(data.subarray(at, at + whole));
        at += whole;
        continue;
      }
      const take = Math.min(size - this.chunkFill, data.length - at);
      this.chunkHash.update(data.subarray(at, at + take));
      this.chunkFill += take;
      at += take;
      if (this.chunkFill === size) {
        this.pushDigest();
      }
    }
    return hashed;
  }

  private hashElsewhere(chunks: Buffer): Promise<void> {
    const first = this.chunkCount;
    for (let i = 0; i < chunks.length / this.options.chunkSize; i++) this.reserveDigest();
    // The table may grow before the answer lands: copy into whichever buffer is current then.
    const landed = this.options.hashChunks!(chunks, this.options.chunkSize).then((digests) => void digests.copy(this.digests, first * 32));
    this.hashing.add(landed);
    const forget = (): void => void this.hashing.delete(landed);
    landed.then(forget, forget);
    return landed;
  }

  /** The next chunk's index, with room for its digest. */
  private reserveDigest(): number {
    if ((this.chunkCount + 1) * 32 > this.digests.length) {
      const grown = Buffer.alloc(this.digests.length * 2);
      this.digests.copy(grown);
      this.digests = grown;
    }
    return this.chunkCount++;
  }

  private pushDigest(): void {
    // Reserve first: reserving may replace this.digests with a larger table.
    const index = this.reserveDigest();
    this.chunkHash.digest().copy(this.digests, index * 32);
    this.chunkHash = createHash('sha256');
    this.chunkFill = 0;
  }
}

function noop(): void {}
