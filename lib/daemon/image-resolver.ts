import { pullImageFrom } from '../image/pull-image.js';
import { formatReference, parseReference } from '../oci/reference.js';
import { isRetryable } from '../registry/errors.js';
import { RegistryClient, type RegistryClientOptions } from '../registry/registry-client.js';
import type { OciStore } from '../store/oci-store.js';
import type { SupernodeSet } from '../supernode/supernode-source.js';

/** Turns what a user names (name:tag, or a registry ref) into a ref of the local store. */
export type ImageResolver = (input: string) => Promise<string>;

export interface ImageResolverOptions {
  registry: Omit<RegistryClientOptions, 'registry'> & { plainHttp?: boolean };
  supernodes?: SupernodeSet;
  /** A supernode failed and the next source is tried. */
  onFallback?: (from: RegistryClient, err: Error) => void;
  /** Every source failed for now; all are tried again after `delayMs`. */
  onRetry?: (err: Error, delayMs: number) => void;
  /** The registry is unreachable and an earlier pull is served instead. */
  onStale?: (ref: string, err: Error) => void;
}

/**
 * Local names resolve as they are; registry refs are pulled (metadata only: data comes on
 * demand), supernodes first. When no source answers, an earlier pull of the same ref is
 * used, so a host whose registry is down still serves (and clones) what it had.
 */
export function imageResolver(store: OciStore, o: ImageResolverOptions): ImageResolver {
  return async (input) => {
    const parsed = parseReference(input);
    const ref = formatReference(parsed);
    if (parsed.kind === 'local') return ref;
    const client = new RegistryClient({ ...o.registry, registry: parsed.registry });
    try {
      await pullImageFrom(store, [...(o.supernodes?.clientsFor(parsed.registry) ?? []), client], parsed, ref, { plainHttp: o.registry.plainHttp, onFallback: o.onFallback, onRetry: o.onRetry });
    } catch (e) {
      const known = (await store.list()).some((t) => t.ref === ref);
      if (!known || !isRetryable(e)) throw e;
      o.onStale?.(ref, e as Error);
    } finally {
      await client.close();
    }
    return ref;
  };
}
