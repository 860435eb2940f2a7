import { readFile } from 'node:fs/promises';
import { SupernodeSet } from '../supernode/supernode-source.js';
import { readTokenFile } from '../supernode/token-file.js';
import { UsageError } from './image-commands.js';
import type { RegistryOptions } from './registry-commands.js';

/** Options of the commands that use supernodes (serve, pull, preheat). */
export interface SupernodeClientOptions {
  supernode?: string | string[];
  'token-file'?: string;
}

export function supernodeUrls(opts: SupernodeClientOptions): string[] {
  const urls = opts.supernode === undefined ? [] : ([] as string[]).concat(opts.supernode);
  for (const u of urls) {
    let parsed: URL | undefined;
    try {
      parsed = new URL(u);
    } catch {
      parsed = undefined;
    }
    if (!parsed || (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') || parsed.pathname !== '/' || parsed.search) {
      throw new UsageError(`--supernode takes a URL like http://HOST:PORT, not ${u}`);
    }
  }
  return urls;
}

/** The supernodes named on the command line, or undefined when none are. */
export async function supernodeSet(opts: SupernodeClientOptions & RegistryOptions): Promise<SupernodeSet | undefined> {
  const urls = supernodeUrls(opts);
  if (urls.length === 0) {
    if (opts['token-file']) throw new UsageError('--token-file is the token for --supernode; name a supernode');
    return undefined;
  }
  if (!opts['token-file']) throw new UsageError('--supernode needs --token-file (supernodes only answer with a token)');
  const [token] = await readTokenFile(opts['token-file']);
  return new SupernodeSet({
    urls,
    token: token!,
    ca: opts['ca-file'] ? await readFile(opts['ca-file']) : undefined,
    insecureSkipVerify: opts['tls-verify'] === false,
  });
}

/** Tells that a supernode could not serve a pull and the next source is tried. */
export function warnFallback(_from: unknown, err: Error): void {
  process.stderr.write(`lazybd: supernode: ${err.message}; trying the next source\n`);
}
