// deploy/provision/ in the netns datacenter: the same scripts the Vagrant VMs run, in their
// no-systemd mode (LAZYBD_PROVISION_NO_SYSTEMD=1 --root DIR --exec), provision a registry, a
// supernode and a node in three namespaces on 198.18.0.0/15, each into its own temp root, and
// become the units' services. An image pushed to the registry is then read whole over NBD on
// the node, through the supernode: the node fetched nothing from the registry, the registry
// sent the image once. A second cold node (the node's cache and store wiped, provisioned
// again) costs the registry nothing more. Everything lives in a harness run (topology.ts):
// namespaces, links and temp roots are removed at the end, and a killed test's are swept by
// the next run (its processes die with it: setpriv --pdeathsig).
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdir, open, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { metricByLabel } from '../support/prometheus-text.js';
import { waitFor, type Owned } from '../support/processes.js';
import { requireTools } from '../support/tools.js';
import { runCommand } from '../support/deploy-root.js';
import { nodeAddress, REGISTRY_ADDRESS, SERVICE_PORT, NODE_METRICS_PORT, supernodeAddress } from './address-plan.js';
import { httpGet } from './ns-http.js';
import { newRunName } from './run-name.js';
import { findRunResources, runDirectory, sweepLeftovers } from './sweep.js';
import { Datacenter, type Host } from './topology.js';

const MiB = 1 << 20;
const PROVISION = join(process.cwd(), 'deploy', 'provision');
const LINK = { rateMbit: 1000, delayUs: 0 };
const STEP_MS = 20_000;

async function canRun(): Promise<boolean> {
  if (process.getuid?.() !== 0) {
    if (process.env.CI === 'true') throw new Error('the provisioning test needs root (network namespaces)');
    console.warn('  (skipping: not root)');
    return false;
  }
  return requireTools('ip', 'tc', 'setpriv', 'curl', 'docker-registry', 'nbdcopy');
}

function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

/** A process in `host` run to completion within `timeoutMs`; throws with its output unless it exits 0. */
async function runIn(dc: Datacenter, host: Host, cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env, timeoutMs = STEP_MS): Promise<string> {
  const p = dc.spawn(host, cmd, args, { env });
  const timer = setTimeout(() => void p.stop(1000), timeoutMs);
  if (p.child.exitCode === null) await once(p.child, 'exit');
  clearTimeout(timer);
  if (p.child.exitCode !== 0) throw new Error(`${cmd} ${args.join(' ')} in ${host.role}: ${p.child.exitCode ?? p.child.signalCode}\n${p.output()}`);
  return p.output();
}

function alive(p: Owned, what: string): void {
  if (p.child.exitCode !== null || p.child.signalCode !== null) throw new Error(`${what} exited (${p.child.exitCode ?? p.child.signalCode}):\n${p.output()}`);
}

test('registry.sh, supernode.sh, node.sh in no-systemd mode: a node reads an image through the supernode; the registry sends it once', async () => {
  if (!(await canRun())) return;
  await sweepLeftovers();
  const run = newRunName();
  const dc = await Datacenter.create(run);
  const dir = runDirectory(run);
  try {
    await mkdir(dir, { recursive: true });
    const [r, s, n] = await dc.addHosts([
      { role: 'r', address: REGISTRY_ADDRESS, shape: LINK },
      { role: 's0', address: supernodeAddress(0), shape: LINK },
      { role: 'n0', address: nodeAddress(0), shape: LINK },
    ]);
    const roots = { r: join(dir, 'root-r'), s: join(dir, 'root-s0'), n: join(dir, 'root-n0') };
    const registry = `${r!.address}:${SERVICE_PORT}`;
    const supernode = `${s!.address}:${SERVICE_PORT}`;
    const settings = {
      ...process.env,
      LAZYBD_PROVISION_NO_SYSTEMD: '1',
      LAZYBD_REGISTRY: registry,
      LAZYBD_SUPERNODE: supernode,
      LAZYBD_SUPERNODE_TOKEN: randomBytes(24).toString('hex'),
      LAZYBD_P2P: '1',
    };
    const provision = (host: Host, script: string, root: string) => dc.spawn(host, 'bash', [join(PROVISION, script), '--root', root, '--exec'], { env: { ...settings, LAZYBD_ADDRESS: host.address } });

    // All three at once, as `vagrant up` would bring the VMs up.
    const registryProc = provision(r!, 'registry.sh', roots.r);
    const supernodeProc = provision(s!, 'supernode.sh', roots.s);
    let nodeProc = provision(n!, 'node.sh', roots.n);
    await waitFor(async () => (alive(registryProc, 'registry.sh'), (await httpGet(r!, `http://${registry}/v2/`, { timeoutS: 2 })).status === 200), STEP_MS, 'the registry');
    await waitFor(async () => (alive(supernodeProc, 'supernode.sh'), (await httpGet(s!, `http://${supernode}/v2/`, { timeoutS: 2 })).status === 401), STEP_MS, 'the supernode (401 without a token)');
    const control = join(roots.n, 'run/lazybd/control.sock');
    const nodeLazybd = join(roots.n, 'usr/bin/lazybd');
    const nodeReady = () => waitFor(async () => (alive(nodeProc, 'node.sh'), (await runCommand(nodeLazybd, ['status', '--daemon', control])).status === 0), STEP_MS, 'the node daemon');
    await nodeReady();
    assert.match(registryProc.output(), /exec \/usr\/bin\/docker-registry serve .*root-r\/etc\/docker\/registry\/config.yml/);
    assert.match(supernodeProc.output(), /--dht-listen 198\.18\.0\.10:49737/);

    // The image, made and pushed on the registry host with the lazybd registry.sh installed there.
    const raw = join(dir, 'disk.raw');
    const h = await open(raw, 'w');
    await h.truncate(32 * MiB);
    const dataBytes = 8 * MiB;
    for (const at of [0, 10 * MiB, 20 * MiB, 28 * MiB]) await h.write(randomBytes(2 * MiB), 0, 2 * MiB, at);
    await h.close();
    const origin = { ...process.env, LAZYBD_STORE: join(dir, 'origin-store') };
    const ref = `${registry}/deploy/disk:v1`;
    await runIn(dc, r!, join(roots.r, 'usr/bin/lazybd'), ['create', raw, 'deploy/disk:v1'], origin);
    await runIn(dc, r!, join(roots.r, 'usr/bin/lazybd'), ['push', 'deploy/disk:v1', ref, '--plain-http'], origin);
    const inspect = JSON.parse(await runIn(dc, r!, join(roots.r, 'usr/bin/lazybd'), ['inspect', 'deploy/disk:v1', '--json'], origin)) as { layers: { size: number }[] };
    const layerBytes = inspect.layers.reduce((a, l) => a + l.size, 0);
    const source = sha256(await readFile(raw));

    /** A cold read of the whole image on the node: exports add, then nbdcopy; returns egress of registry and supernode meanwhile. */
    const readOnNode = async (tag: string) => {
      const before = { r: await dc.counters(r!), s: await dc.counters(s!) };
      const added = await runCommand(nodeLazybd, ['exports', 'add', ref, '--name', 'disk', '--daemon', control]);
      assert.is(added.status, 0, `${tag}: exports add: ${added.stderr}`);
      const out = join(dir, `read-${tag}.raw`);
      const copy = await runCommand('nbdcopy', [`nbd+unix:///disk?socket=${join(roots.n, 'run/lazybd/nbd.sock')}`, out], { timeoutMs: STEP_MS });
      assert.is(copy.status, 0, `${tag}: nbdcopy: ${copy.stderr}\n${nodeProc.output()}`);
      assert.is(sha256(await readFile(out)), source, `${tag}: the node read the pushed image`);
      await rm(out);
      const after = { r: await dc.counters(r!), s: await dc.counters(s!) };
      const metrics = await httpGet(n!, `http://${n!.address}:${NODE_METRICS_PORT}/metrics`);
      assert.is(metrics.status, 200, `${tag}: node metrics`);
      return { registryTx: after.r.txBytes - before.r.txBytes, supernodeTx: after.s.txBytes - before.s.txBytes, sources: metricByLabel(metrics.body, 'lazybd_source_bytes_total', 'source') };
    };

    const first = await readOnNode('first');
    assert.ok(first.sources.supernode! >= dataBytes, `node's bytes by source: ${JSON.stringify(first.sources)}`);
    assert.is(first.sources.registry ?? 0, 0, 'the node never went to the registry');
    assert.ok(first.supernodeTx >= dataBytes, `supernode sent ${first.supernodeTx}`);
    assert.ok(first.registryTx >= dataBytes && first.registryTx <= 1.2 * layerBytes + 256 * 1024, `registry sent ${first.registryTx} for a layer of ${layerBytes}`);

    // A second cold node: the same host wiped and provisioned again (the scripts are idempotent).
    const stopped = Date.now();
    nodeProc.child.kill('SIGTERM');
    await waitFor(() => nodeProc.child.exitCode !== null || nodeProc.child.signalCode !== null, 10_000, 'the node daemon to stop on SIGTERM');
    assert.is(nodeProc.child.exitCode, 0, `SIGTERM: clean exit after ${Date.now() - stopped} ms\n${nodeProc.output()}`);
    await rm(join(roots.n, 'var'), { recursive: true, force: true });
    nodeProc = provision(n!, 'node.sh', roots.n);
    await nodeReady();
    const second = await readOnNode('second');
    assert.ok(second.supernodeTx >= dataBytes, `second: supernode sent ${second.supernodeTx}`);
    assert.ok(second.registryTx < 0.05 * dataBytes, `second: the registry sent ${second.registryTx} again`);
    assert.is(second.sources.registry ?? 0, 0);
    const k = (b: number) => `${(b / 1024).toFixed(0)} KiB`;
    console.log(`  layer ${k(layerBytes)}; registry sent ${k(first.registryTx)} then ${k(second.registryTx)}; supernode sent ${k(first.supernodeTx)} then ${k(second.supernodeTx)}; node by source ${JSON.stringify(first.sources)}`);
  } finally {
    await dc.destroy();
  }
  assert.equal(await findRunResources(run), { namespaces: [], interfaces: [], directories: [] }, 'nothing of the run is left');
});

test.run();
