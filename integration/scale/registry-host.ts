// docker-registry (distribution 2.8) inside a host's namespace: the origin registry, or a
// pull-through cache of it (`proxy: remoteurl:`) for mirror mode.
import { mkdir, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Owned } from '../support/processes.js';
import { registryConfig, registryEnv } from '../support/registry-server.js';
import { SERVICE_PORT } from './address-plan.js';
import { waitForHttp } from './ns-http.js';
import type { Datacenter, Host } from './topology.js';

export interface RegistryHost {
  /** `address:port`, the registry part of an image reference. */
  endpoint: string;
  storageDir: string;
  process: Owned;
}

/** Starts docker-registry in `host`, ready once `/v2/` answers `probeFrom`. `upstream`: be a pull-through cache of that registry. */
export async function startRegistryHost(dc: Datacenter, host: Host, probeFrom: Host, dir: string, options: { upstream?: string; timeoutMs: number }): Promise<RegistryHost> {
  await mkdir(dir, { recursive: true });
  const storageDir = join(dir, 'storage');
  const endpoint = `${host.address}:${SERVICE_PORT}`;
  const configFile = join(dir, 'config.yml');
  await writeFile(configFile, registryConfig({ addr: endpoint, storageDir, sections: options.upstream ? ['proxy:', `  remoteurl: http://${options.upstream}`] : [] }));
  const proc = dc.spawn(host, 'docker-registry', ['serve', configFile], { env: registryEnv() });
  try {
    await waitForHttp(probeFrom, `http://${endpoint}/v2/`, `docker-registry in ${host.role}`, options.timeoutMs);
  } catch (e) {
    await proc.stop();
    throw new Error(`${(e as Error).message}\n${proc.output()}`);
  }
  return { endpoint, storageDir, process: proc };
}

/** Bytes of the blobs a registry holds (for a mirror: what it fetched and kept). */
export async function storedBlobBytes(storageDir: string): Promise<number> {
  const root = join(storageDir, 'docker', 'registry', 'v2', 'blobs');
  let total = 0;
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true }).catch(() => [])) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.name === 'data') total += (await stat(p)).size;
    }
  };
  await walk(root);
  return total;
}
