import { readFile } from 'node:fs/promises';
import { text } from 'node:stream/consumers';
import { pullImageFrom } from '../image/pull-image.js';
import { pushImage } from '../image/push-image.js';
import { formatReference, parseReference, type RemoteReference } from '../oci/reference.js';
import type { Credentials } from '../registry/auth-file.js';
import { RegistryClient, type RegistryClientOptions } from '../registry/registry-client.js';
import { localRef, openStore } from './image-commands.js';
import { UsageError } from './usage-error.js';
import { withProgress } from './progress.js';
import { printResult, type GlobalOptions } from './run-command.js';
import { supernodeSet, warnFallback, warnRetry, type SupernodeClientOptions } from './supernode-options.js';

export interface RegistryOptions extends GlobalOptions {
  'plain-http'?: boolean;
  username?: string;
  'password-stdin'?: boolean;
  'tls-verify'?: boolean;
  'ca-file'?: string;
}

export function remoteRef(input: string): RemoteReference {
  const ref = parseReference(input);
  if (ref.kind !== 'remote') throw new UsageError(`${input} is not a registry reference (host[:port]/repository[:tag])`);
  return ref;
}

async function credentials(opts: RegistryOptions): Promise<Credentials | undefined> {
  if (!opts.username) {
    if (opts['password-stdin']) throw new UsageError('--password-stdin needs --username');
    return undefined;
  }
  if (!opts['password-stdin']) throw new UsageError('--username needs --password-stdin (passwords are never taken on the command line)');
  return { username: opts.username, password: (await text(process.stdin)).replace(/\r?\n$/, '') };
}

export type RegistrySettings = Omit<RegistryClientOptions, 'registry'>;

/** Registry settings from the command line (read once: the password comes from stdin). Auth files apply when no credentials are given. */
export async function registrySettings(opts: RegistryOptions): Promise<RegistrySettings> {
  return {
    plainHttp: opts['plain-http'] === true,
    credentials: await credentials(opts),
    insecureSkipVerify: opts['tls-verify'] === false,
    ca: opts['ca-file'] ? await readFile(opts['ca-file']) : undefined,
  };
}

async function registryClient(remote: RemoteReference, opts: RegistryOptions): Promise<RegistryClient> {
  return new RegistryClient({ ...(await registrySettings(opts)), registry: remote.registry });
}

export async function pushCommand(input: string, target: string, opts: RegistryOptions): Promise<void> {
  const ref = localRef(input);
  const remote = remoteRef(target);
  const client = await registryClient(remote, opts);
  try {
    const store = await openStore(opts);
    const r = await withProgress('push', opts, (onProgress) => pushImage(store, client, ref, remote, { onProgress }));
    printResult(opts, r, () => `pushed ${ref} to ${r.remote} (${r.manifestDigest}): ${r.blobs.map((b) => b.outcome).join(', ')}`);
  } finally {
    await client.close();
  }
}

export async function pullCommand(source: string, target: string | undefined, opts: RegistryOptions & SupernodeClientOptions & { full?: boolean }): Promise<void> {
  const remote = remoteRef(source);
  const ref = target ? localRef(target) : formatReference(remote);
  const client = await registryClient(remote, opts);
  const supernodes = await supernodeSet(opts);
  try {
    const store = await openStore(opts);
    const clients = [...(supernodes?.clientsFor(remote.registry) ?? []), client];
    const r = await withProgress('pull', opts, (onProgress) =>
      pullImageFrom(store, clients, remote, ref, { full: opts.full, plainHttp: opts['plain-http'] === true, onProgress, onFallback: warnFallback, onRetry: warnRetry }),
    );
    printResult(opts, r, () => `pulled ${source} as ${ref}: ${r.layers} layers (${r.layersComplete} complete locally), ${r.bytesFetched} bytes fetched`);
  } finally {
    await client.close();
    await supernodes?.close();
  }
}
