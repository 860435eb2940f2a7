import { UsageError } from './image-commands.js';

/** `HOST:PORT`, `[v6]:PORT` or `PORT` (host 127.0.0.1: nothing listens beyond this machine unless told to). */
export function parseHostPort(flag: string, value: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(value) ?? /^()()(\d+)$/.exec(value);
  if (!m) throw new UsageError(`${flag} takes HOST:PORT or PORT, not ${value}`);
  return { host: m[1] || m[2] || '127.0.0.1', port: Number(m[3]) };
}
