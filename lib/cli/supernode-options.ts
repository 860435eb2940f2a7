import { readFile } from 'node:fs/promises';
import { SupernodeSet } from '../supernode/supernode-source.js';
import { readTokenFile } from '../supernode/token-file.js';
import { UsageError } from './usage-error.js';
import type { RegistryOptions } from './registry-commands.js';

/** Options of the commands that use supernodes (serve, pull, preheat). */
export interface SupernodeClientOptions {
  /** Base URLs, checked by the command table's `url` kind. */
  supernode: string[];
  'token-file'?: string;
}

/** The supernodes named on the command line, or undefined when none are. */
export async function supernodeSet(opts: SupernodeClientOptions & RegistryOptions): Promise<SupernodeSet | undefined> {
  const urls = opts.supernode;
  if (urls.length === 0) {
    if (opts['token-file']) throw new UsageError('--token-file is the token for --supernode; name a supernode');
    return undefined;
  }
  const [token] = await readTokenFile(opts['token-file']!);
  return new SupernodeSet({
    urls,
    token: token!,
    ca: opts['ca-file'] ? await readFile(opts['ca-file']) : undefined,
    insecureSkipVerify: opts['tls-verify'] === false,
  });
}

/** Tells that no source could serve a pull for now and all are tried again. */
export function warnRetry(err: Error, delayMs: number): void {
  process.stderr.write(`lazybd: ${err.message}; trying again in ${delayMs / 1000} s\n`);
}

/** Tells that a supernode could not serve a pull and the next source is tried. */
export function warnFallback(_from: unknown, err: Error): void {
  process.stderr.write(`lazybd: supernode: ${err.message}; trying the next source\n`);
}
