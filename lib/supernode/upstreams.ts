import { RegistryClient, type RegistryClientOptions } from '../registry/registry-client.js';
import { UnknownUpstreamError } from './errors.js';

export interface Upstream {
  /** `host[:port]`, as nodes name it in `?ns=`. */
  readonly ns: string;
  readonly client: RegistryClient;
}

/**
 * The registries a supernode fronts, one client (pool, tokens, credentials) each. Only
 * these are reachable through it: a supernode is no open proxy. Nodes name the registry
 * with `?ns=` (containerd's mirror convention); without it, the first upstream.
 */
export class Upstreams {
  private readonly byNs = new Map<string, Upstream>();

  constructor(hosts: readonly string[], settings: Omit<RegistryClientOptions, 'registry'>) {
    for (const ns of hosts) this.byNs.set(ns.toLowerCase(), { ns, client: new RegistryClient({ ...settings, registry: ns }) });
  }

  get all(): Upstream[] {
    return [...this.byNs.values()];
  }

  resolve(ns: string | null | undefined): Upstream {
    const found = ns ? this.byNs.get(ns.toLowerCase()) : this.byNs.values().next().value;
    if (!found) throw new UnknownUpstreamError(ns ?? '(none configured)');
    return found;
  }

  async close(): Promise<void> {
    await Promise.allSettled(this.all.map((u) => u.client.close()));
  }
}
