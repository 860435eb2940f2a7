import type { Socket } from 'node:net';
import { setSendBuffer } from '../store/native-io.js';

/**
 * Send buffer asked for on unix-socket connections (the kernel grants up to twice net.core.wmem_max).
 * Linux's default, ~208 KiB, splits every 1 MiB read reply into five writes with an event-loop turn
 * and a client wake-up between each: sequential reads ran at ~0.6x nbdkit, whose blocking send waits
 * in the kernel instead (integration/bench/README.md). Not for TCP: a fixed SO_SNDBUF turns off the
 * kernel's own send-buffer tuning there.
 */
export const UNIX_SEND_BUFFER = 2 * 1024 * 1024;

/** Widens a unix-socket connection's send buffer: the size in effect, or null where it cannot be set (pure backend). */
export function widenSendBuffer(socket: Socket): number | null {
  // Node keeps a stream socket's fd on its internal handle; no public API reaches SO_SNDBUF.
  const fd = (socket as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) return null;
  try {
    return setSendBuffer(fd, UNIX_SEND_BUFFER);
  } catch {
    return null;
  }
}
