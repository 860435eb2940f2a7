import { createRequire } from 'node:module';
import type * as Undici from 'undici';

/** The parts of undici lazybd uses. */
export interface UndiciParts {
  Agent: typeof Undici.Agent;
  EnvHttpProxyAgent: typeof Undici.EnvHttpProxyAgent;
  Client: typeof Undici.Client;
  errors: typeof Undici.errors;
}

let loaded: UndiciParts | undefined;
let loading: Promise<UndiciParts> | undefined;

/**
 * undici, loaded on first use. A daemon serving local images never speaks HTTP: importing it up
 * front was a third of `serve`'s start-up (integration/bench/README.md §Start-up). Nor does the
 * package's index load: it brings every dispatcher, the mock agents, fetch, WebSocket, caches and
 * interceptors, 100-145 ms on a 2-vCPU machine against 36-51 ms for these modules, paid by every
 * registry client and every control command. They are plain CommonJS files (the package has no
 * exports map); the index's one side effect is reproduced: it gives every dispatcher the request
 * API. lazy-undici.test.ts checks the parts are the index's own.
 */
export function undici(): Promise<UndiciParts> {
  return (loading ??= Promise.resolve().then(() => (loaded = loadParts())));
}

/** The module once a client has loaded it; before that no undici error can exist. */
export function undiciIfLoaded(): UndiciParts | undefined {
  return loaded;
}

function loadParts(): UndiciParts {
  const requireCjs = createRequire(import.meta.url);
  const dispatcher = requireCjs('undici/lib/dispatcher/dispatcher') as typeof Undici.Dispatcher;
  Object.assign(dispatcher.prototype, requireCjs('undici/lib/api') as object);
  return {
    Agent: requireCjs('undici/lib/dispatcher/agent') as typeof Undici.Agent,
    EnvHttpProxyAgent: requireCjs('undici/lib/dispatcher/env-http-proxy-agent') as typeof Undici.EnvHttpProxyAgent,
    Client: requireCjs('undici/lib/dispatcher/client') as typeof Undici.Client,
    errors: requireCjs('undici/lib/core/errors') as typeof Undici.errors,
  };
}
