import { formatCodec, parseCodec, type CodecChoice } from '../format/chunk-codec.js';
import { MAX_CHUNK_SIZE, MIN_CHUNK_SIZE, MAX_ZSTD_LEVEL, isValidChunkSize } from '../format/layer-spec.js';

/** How the value of an option is written on the command line and what it becomes. */
export interface ValueKind<T = unknown> {
  readonly name: string;
  /** What a value must be, as in "--io-timeout takes <expects>, not 0". */
  readonly expects: string;
  /** A well-formed value, for documentation and tests. */
  readonly example: string;
  /** The value, or undefined when `text` is malformed. */
  parse(text: string): T | undefined;
  /** The value as written on the command line, where String() would not do (--help's defaults). */
  format?(value: T): string;
}

/** An option that takes no value: present is true, `--no-<name>` is false. */
export type OptionKind = ValueKind | 'flag';

export interface HostPort {
  host: string;
  port: number;
}

// Plain decimals only: Number() would also take '', ' 5', '0x10', '1e3' and 'Infinity'.
const DECIMAL = /^\d+(?:\.\d+)?$/;
const INTEGER = /^\d+$/;

function number(name: string, expects: string, example: string, ok: (n: number) => boolean): ValueKind<number> {
  return { name, expects, example, parse: (t) => (DECIMAL.test(t) && ok(Number(t)) ? Number(t) : undefined) };
}

export const text: ValueKind<string> = { name: 'text', expects: 'a non-empty value', example: 'x', parse: (t) => t || undefined };

export const chunkSize: ValueKind<number> = {
  name: 'chunk-size',
  expects: `a power of two from ${MIN_CHUNK_SIZE} to ${MAX_CHUNK_SIZE} (bytes)`,
  example: '65536',
  parse: (t) => (INTEGER.test(t) && isValidChunkSize(Number(t)) ? Number(t) : undefined),
};

export const codec: ValueKind<CodecChoice> = {
  name: 'codec',
  expects: `none, lz4, zstd or zstd:LEVEL (1 to ${MAX_ZSTD_LEVEL})`,
  example: 'zstd:3',
  parse: (t) => {
    try {
      return parseCodec(t);
    } catch {
      return undefined;
    }
  },
  format: formatCodec,
};

export const rate = number('rate', 'a non-negative number of MB/s', '16', () => true);
export const gib = number('gib', 'a non-negative number of GiB', '10', () => true);
export const mib = number('mib', 'a non-negative number of MiB', '256', () => true);
export const seconds = number('seconds', 'a positive number of seconds', '30', (n) => n > 0);
export const secondsOrZero = number('seconds-or-zero', 'a non-negative number of seconds', '30', () => true);

export const hostPort: ValueKind<HostPort> = {
  name: 'host-port',
  expects: 'HOST:PORT or PORT (port 0 to 65535)',
  example: '127.0.0.1:10809',
  parse: (t) => {
    const m = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(t) ?? /^()()(\d{1,5})$/.exec(t);
    if (!m || Number(m[3]) > 65535) return undefined;
    return { host: m[1] || m[2] || '127.0.0.1', port: Number(m[3]) };
  },
  format: ({ host, port }) => (host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`),
};

/** An http(s) base URL with nothing after the host: a supernode. */
export const baseUrl: ValueKind<string> = {
  name: 'url',
  expects: 'a URL like http://HOST:PORT',
  example: 'http://127.0.0.1:5100',
  parse: (t) => {
    try {
      const u = new URL(t);
      return (u.protocol === 'http:' || u.protocol === 'https:') && u.pathname === '/' && !u.search && !u.hash && !u.username ? t : undefined;
    } catch {
      return undefined;
    }
  },
};

/** A registry `host[:port]`, as in an image reference. */
export const registryHost: ValueKind<string> = {
  name: 'registry-host',
  expects: 'a registry HOST[:PORT]',
  example: 'registry.example:5000',
  parse: (t) => (/^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:\d{1,5})?$/i.test(t) || /^\[[0-9a-f:]+\](:\d{1,5})?$/i.test(t) ? t : undefined),
};

export const count = number('count', 'a positive whole number', '4', (n) => Number.isInteger(n) && n > 0);
