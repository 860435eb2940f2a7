// PENDING until `lazybd supernode` and `lazybd preheat` are merged: rename to
// datacenter-supernode.test.ts (the runner picks up *.test.ts only). With CI=true a build
// without the supernode fails here instead of skipping.
// The supernode modes at small scale: a chunk-aware mirror fetches the trace's chunks once
// for the whole fleet; preheated, it fetches the image once and the nodes nothing.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { requireTools } from '../support/tools.js';
import { HARNESS_TOOLS, runHarness } from './datacenter-harness.js';
import type { ModeReport } from './report.js';
import { findRunResources } from './sweep.js';
import { supernodeAvailable } from './supernode.js';

const NODES = 3;

async function canRun(): Promise<boolean> {
  const ci = process.env.CI === 'true';
  if (process.getuid?.() !== 0) {
    if (ci) throw new Error('the datacenter test needs root (network namespaces)');
    console.warn('  (skipping: not root)');
    return false;
  }
  if (!(await supernodeAvailable())) {
    if (ci) throw new Error('`lazybd supernode --help` fails: this build has no supernode');
    console.warn('  (skipping: no lazybd supernode in this build)');
    return false;
  }
  return requireTools(...HARNESS_TOOLS);
}

test('supernode modes: the registry sends the working set once; preheated, the image once', async () => {
  if (!(await canRun())) return;
  // 256 MiB virtual, 64 MiB data: a working set of ~4 MiB, so fixed costs (manifest, config,
  // layer index) stay small beside it.
  const r = await runHarness(['--nodes', String(NODES), '--mode', 'supernode,supernode+preheat', '--image-mib', '256', '--step-timeout', '60'], 150_000);
  assert.is(r.status, 0, r.stderr);
  const report = r.report!;
  const { image } = report;
  const mode = (name: string): ModeReport => report.modes.find((m) => m.mode === name)!;
  for (const m of report.modes) {
    assert.is(m.nodesReady, NODES, `${m.mode}: ${JSON.stringify(m.nodeOutcomes.map((n) => n.failure))}`);
    for (const n of m.nodeOutcomes) assert.is(n.sha256, image.replaySha256, `${m.mode} ${n.role}: the source's bytes`);
    assert.equal(m.verifyFailures, { nodes: 0, services: 0, unscraped: 0 }, `${m.mode}: verification failures, metrics all read`);
  }

  const lazy = mode('supernode');
  assert.ok(lazy.registryEgressBytes >= image.workingSetBytes, `supernode: registry sent ${lazy.registryEgressBytes} < working set ${image.workingSetBytes}`);
  assert.ok(lazy.registryEgressBytes <= 1.1 * image.workingSetBytes, `supernode: registry sent ${lazy.registryEgressBytes} > 1.1 × working set ${image.workingSetBytes}`);
  assert.ok(lazy.cacheEgressBytes! >= NODES * image.workingSetBytes);
  assert.ok((lazy.nodeSourceBytes.supernode ?? 0) >= 0.9 * NODES * image.workingSetBytes, JSON.stringify(lazy.nodeSourceBytes));

  const pre = mode('supernode+preheat');
  assert.ok(pre.preparationMs > 0);
  assert.ok(pre.registryEgressBytes >= image.layerBytes && pre.registryEgressBytes <= 1.1 * image.imageBytes, `preheat: registry sent ${pre.registryEgressBytes} for an image of ${image.imageBytes}`);
  assert.is(pre.nodeSourceBytes.registry ?? 0, 0, 'preheated: no node fell back to the registry');

  assert.equal(await findRunResources(report.run), { namespaces: [], interfaces: [], directories: [] });
});

test.run();
