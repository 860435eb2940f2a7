// The datacenter harness at small scale (3 nodes, a 64 MiB image): real namespaces, a real
// docker-registry and pull-through mirror, real lazybd nodes. Every node must read the
// start-up bytes exactly as in the source; egress must be what each mode implies; nothing
// of a run may survive it, not even a run killed with SIGKILL.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnOwned, waitFor, type Owned } from '../support/processes.js';
import { requireTools } from '../support/tools.js';
import { DATACENTER_BIN, HARNESS_TOOLS, runHarness } from './datacenter-harness.js';
import { namespacePids } from './netns.js';
import type { ModeReport } from './report.js';
import { RUN_PREFIX } from './run-name.js';
import { findRunResources, type RunResources } from './sweep.js';

const NODES = 3;

/** Root and the tools, or a skip (a failure with CI=true). */
async function canRun(): Promise<boolean> {
  if (process.getuid?.() !== 0) {
    if (process.env.CI === 'true') throw new Error('the datacenter test needs root (network namespaces)');
    console.warn('  (skipping: not root)');
    return false;
  }
  return requireTools(...HARNESS_TOOLS);
}

function runPrefixOf(pid: number): string {
  return `${RUN_PREFIX}${pid.toString(36).padStart(5, '0')}`;
}

/** `output`: what the harness printed, to tell why when something is left. */
async function assertNothingLeft(prefix: string, output = ''): Promise<void> {
  const left = await findRunResources(prefix);
  assert.equal(left, { namespaces: [], interfaces: [], directories: [] }, `left behind by ${prefix}${output && `; the harness printed:\n${output}`}`);
}

test('registry and mirror modes: right bytes on every node, egress per mode, all cleaned up', async () => {
  if (!(await canRun())) return;
  const r = await runHarness(['--nodes', String(NODES), '--mode', 'registry,mirror', '--waves', '2', '--image-mib', '64', '--step-timeout', '60'], 120_000);
  assert.is(r.status, 0, r.stderr);
  const report = r.report!;
  const { image } = report;
  const mode = (name: string, wave: number): ModeReport => report.modes.find((m) => m.mode === name && m.wave === wave)!;

  for (const m of report.modes) {
    assert.is(m.nodesReady, NODES, `${m.mode} #${m.wave}: ${JSON.stringify(m.nodeOutcomes.map((n) => n.failure))}`);
    for (const n of m.nodeOutcomes) {
      assert.is(n.reads, image.reads, `${m.mode} ${n.role}: every start-up read`);
      assert.is(n.sha256, image.replaySha256, `${m.mode} ${n.role}: the source's bytes`);
      assert.ok(n.metricsScraped, `${m.mode} ${n.role}: metrics answered`);
      assert.is(n.readErrors + n.mismatches + n.verifyFailures, 0);
      assert.ok(n.readyMs >= n.servingMs && n.servingMs > 0);
    }
  }
  // The working set is the trace's share of the data (whole chunks), well below the image.
  assert.ok(image.workingSetBytes >= 0.06 * image.dataBytes && image.workingSetBytes < 0.1 * image.dataBytes, JSON.stringify(image));

  // Registry mode: each node fetched its own working set, and little else.
  for (const wave of [1, 2]) {
    const reg = mode('registry', wave);
    assert.ok(reg.registryEgressBytes >= 0.95 * NODES * image.workingSetBytes, `registry #${wave}: ${reg.registryEgressBytes} < ${NODES} × ${image.workingSetBytes}`);
    assert.ok(reg.registryEgressBytes <= 1.25 * NODES * image.workingSetBytes, `registry #${wave}: ${reg.registryEgressBytes} > 1.25 × ${NODES} × ${image.workingSetBytes}`);
    assert.is(reg.nodeSourceBytes.registry, NODES * image.workingSetBytes, 'nodes received exactly their working sets');
  }

  // Mirror mode: the mirror fetches whole blobs, all of the image, once into its storage;
  // the registry sent at least that (distribution 2.8 streams a blob again for every request
  // that arrives while it is still fetching it, so a simultaneous start costs more).
  const cold = mode('mirror', 1);
  assert.ok(cold.mirrorStoredBytes! >= image.layerBytes && cold.mirrorStoredBytes! <= image.imageBytes, `mirror stored ${cold.mirrorStoredBytes} of ${image.imageBytes}`);
  assert.ok(cold.registryEgressBytes >= cold.mirrorStoredBytes!, `registry sent ${cold.registryEgressBytes}, the mirror kept ${cold.mirrorStoredBytes}`);
  assert.ok(cold.cacheEgressBytes! >= NODES * image.workingSetBytes);
  // Warm: the second fleet costs the registry (almost) nothing — manifest checks only.
  const warm = mode('mirror', 2);
  assert.ok(warm.registryEgressBytes < 0.01 * cold.mirrorStoredBytes!, `warm mirror: the registry still sent ${warm.registryEgressBytes}`);
  assert.ok(warm.cacheEgressBytes! >= NODES * image.workingSetBytes);
  assert.is(warm.mirrorStoredBytes, cold.mirrorStoredBytes);

  await assertNothingLeft(report.run);
});

/** A small run (2 nodes, registry mode), once its nodes are starting: every kind of resource exists then. */
async function runInProgress(): Promise<{ harness: Owned; prefix: string; resources: RunResources }> {
  const harness = spawnOwned(process.execPath, [DATACENTER_BIN, '--nodes', '2', '--mode', 'registry', '--image-mib', '16', '--step-timeout', '60']);
  const prefix = runPrefixOf(harness.child.pid!);
  await waitFor(() => /mode registry: starting/.test(harness.output()), 60_000, 'the run to start its nodes');
  const resources = await findRunResources(prefix);
  assert.ok(resources.namespaces.length >= 4 && resources.interfaces.length >= 5, `resources of the run: ${JSON.stringify(resources)}`);
  return { harness, prefix, resources };
}

test('a run killed with SIGKILL: its processes die with it, --cleanup removes the rest', async () => {
  if (!(await canRun())) return;
  const { harness, prefix, resources } = await runInProgress();
  try {
    harness.child.kill('SIGKILL');
    await harness.stop();
    // Every process was started with the kernel's parent-death signal: none outlives the harness.
    await waitFor(async () => (await Promise.all(resources.namespaces.map(namespacePids))).every((p) => p.length === 0), 10_000, 'processes in the dead run to exit');
    const left = await findRunResources(prefix);
    assert.ok(left.namespaces.length > 0 && left.interfaces.length > 0, 'SIGKILL leaves namespaces and links behind');

    // (Another harness starting now may sweep it first: what counts is that it is gone.)
    const sweep = await runHarness<{ runs: string[] }>(['--cleanup'], 60_000);
    assert.is(sweep.status, 0, sweep.stderr);
    await assertNothingLeft(prefix);
  } finally {
    await harness.stop();
  }
});

test('SIGTERM mid-run: the harness stops its processes, removes everything and exits 143', async () => {
  if (!(await canRun())) return;
  const { harness, prefix } = await runInProgress();
  try {
    harness.child.kill('SIGTERM');
    await waitFor(() => harness.child.exitCode !== null, 30_000, 'the harness to exit');
    assert.is(harness.child.exitCode, 143, harness.output());
    await assertNothingLeft(prefix, harness.output());
  } finally {
    await harness.stop();
  }
});

test.run();
