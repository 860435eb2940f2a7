import { mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isProcessAlive } from '../store/process-alive.js';

export interface ExportStatus {
  export: string;
  ref: string;
  uri: string;
  writable: boolean;
  bytesLocal: number;
  bytesTotal: number;
  sources: string[];
  prefetch: { state: 'off' | 'running' | 'done' | 'failed'; rateBytesPerSec: number };
  /** With P2P: connected peers offering chunks of the image's layers. */
  peers?: number;
}

export interface DaemonStatus {
  pid: number;
  startedAt: string;
  exports: ExportStatus[];
}

/** Where running daemons publish their status for `lazybd status`. */
export function statusDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(env.XDG_RUNTIME_DIR || tmpdir(), 'lazybd', 'status');
}

/**
 * A daemon rewrites its status file (atomically) every interval; `lazybd status`
 * reads the files of live daemons. No control socket to secure, nothing to block on.
 */
export class StatusPublisher {
  private timer: NodeJS.Timeout | undefined;
  private readonly path: string;

  constructor(
    private readonly snapshot: () => DaemonStatus,
    private readonly dir = statusDir(),
    private readonly intervalMs = 1000,
  ) {
    this.path = join(dir, `${process.pid}.json`);
  }

  async start(): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    await this.publish();
    this.timer = setInterval(() => void this.publish().catch(() => undefined), this.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await rm(this.path, { force: true });
  }

  private async publish(): Promise<void> {
    await writeFile(`${this.path}.tmp`, JSON.stringify(this.snapshot()));
    await rename(`${this.path}.tmp`, this.path);
  }
}

/** Status of every live daemon; files of dead ones are removed. */
export async function readStatuses(dir = statusDir()): Promise<DaemonStatus[]> {
  const names = await readdir(dir).catch(() => [] as string[]);
  const out: DaemonStatus[] = [];
  for (const name of names.filter((n) => n.endsWith('.json'))) {
    const path = join(dir, name);
    if (!isProcessAlive(Number(name.slice(0, -5)))) {
      await rm(path, { force: true });
      continue;
    }
    const status = await readFile(path, 'utf8').then((t) => JSON.parse(t) as DaemonStatus, () => undefined);
    if (status) out.push(status);
  }
  return out;
}
