// Shared set-up for the NBD integration tests: raw-file exports served in-process on a unix socket.
import { execFile } from 'node:child_process';
import { mkdtemp, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { BlockDevice, BlockStatusExtent, WriteZeroesOptions } from '../lib/device/block-device.js';
import { RawFileDevice } from '../lib/device/raw-file-device.js';
import type { NbdLogger } from '../lib/nbd/logger.js';
import { NbdServer, type NbdServerOptions } from '../lib/nbd/server.js';

export const run = promisify(execFile);

/**
 * Raw-file device whose block status is computed from the data: 4 KiB blocks
 * that read as zeroes are reported as holes (as a sparse layer would).
 */
export class ZeroScanDevice implements BlockDevice {
  static readonly granule = 4096;
  constructor(private readonly inner: RawFileDevice) {}
  get size() { return this.inner.size; }
  get readOnly() { return this.inner.readOnly; }
  get canMultiConn() { return this.inner.canMultiConn; }
  read(offset: number, length: number) { return this.inner.read(offset, length); }
  write(offset: number, data: Buffer, fua: boolean) { return this.inner.write(offset, data, fua); }
  flush() { return this.inner.flush(); }
  trim(offset: number, length: number, fua: boolean) { return this.inner.trim(offset, length, fua); }
  writeZeroes(offset: number, length: number, o: WriteZeroesOptions) { return this.inner.writeZeroes(offset, length, o); }
  cache(offset: number, length: number) { return this.inner.cache(offset, length); }
  close() { return this.inner.close(); }
  async blockStatus(offset: number, length: number): Promise<BlockStatusExtent[]> {
    const data = await this.inner.read(offset, length);
    const extents: BlockStatusExtent[] = [];
    for (let at = 0; at < length; ) {
      const end = Math.min(length, at + ZeroScanDevice.granule - ((offset + at) % ZeroScanDevice.granule));
      const zero = data.subarray(at, end).every((b) => b === 0);
      const last = extents[extents.length - 1];
      if (last && last.zero === zero) last.length += end - at;
      else extents.push({ length: end - at, hole: zero, zero });
      at = end;
    }
    return extents;
  }
}

export interface ExportSpec {
  name: string;
  description?: string;
  size: number;
  readOnly?: boolean;
  zeroScan?: boolean;
  /** Initial content written at offset 0. */
  content?: Buffer;
}

export interface Served {
  dir: string;
  socket: string;
  server: NbdServer;
  devices: Map<string, BlockDevice>;
  files: Map<string, string>;
  logs: string[];
  uri(name: string, scheme?: string): string;
  stop(): Promise<void>;
}

/** Creates the export files in a fresh temp dir and serves them; always call stop(). */
export async function serve(specs: ExportSpec[], options: Partial<NbdServerOptions> = {}): Promise<Served> {
  const dir = await mkdtemp(join(tmpdir(), 'lazybd-nbd-'));
  const logs: string[] = [];
  const logger: NbdLogger = {
    debug: (m) => logs.push(`debug ${m}`),
    info: (m) => logs.push(`info ${m}`),
    warn: (m) => logs.push(`warn ${m}`),
  };
  const devices = new Map<string, BlockDevice>();
  const files = new Map<string, string>();
  try {
    for (const spec of specs) {
      const file = join(dir, `${spec.name || 'default'}.raw`);
      await writeFile(file, spec.content ?? Buffer.alloc(0));
      await truncate(file, spec.size);
      const raw = await RawFileDevice.open(file, { readOnly: spec.readOnly ?? false });
      devices.set(spec.name, spec.zeroScan ? new ZeroScanDevice(raw) : raw);
      files.set(spec.name, file);
    }
    const server = new NbdServer({
      exports: specs.map((s) => ({ name: s.name, description: s.description, device: devices.get(s.name)! })),
      logger,
      ...options,
    });
    const socket = join(dir, 'nbd.sock');
    await server.listen({ path: socket });
    return {
      dir,
      socket,
      server,
      devices,
      files,
      logs,
      uri: (name, scheme = 'nbd+unix') => `${scheme}:///${name}?socket=${socket}`,
      async stop() {
        await server.close();
        for (const d of devices.values()) await d.close();
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    for (const d of devices.values()) await d.close();
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

/** Runs a Python script under nbdsh (system python3 first on PATH: python3-libnbd lives there). */
export async function nbdsh(script: string): Promise<string> {
  const env = { ...process.env, PATH: `/usr/bin:${process.env.PATH ?? ''}` };
  const { stdout } = await run('nbdsh', ['-c', script], { env, timeout: 60_000 });
  return stdout;
}

/** Deterministic pseudo-random bytes (xorshift), so failures reproduce. */
export function pattern(length: number, seed = 1): Buffer {
  const b = Buffer.allocUnsafe(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}
