// The VM fleet harness at the smallest size that shows anything (one host, two VMs at once, one
// reference round; ~3 min of TCG on 2 cores): every VM boots to its marker from a fresh disk,
// the single lazy boot fetches its working set and little more, K disks of a host cost the
// registry what their disk service implies, and nothing of the run survives it.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { join } from 'node:path';
import { HARNESS_TOOLS, runHarness } from '../scale/datacenter-harness.js';
import { findRunResources } from '../scale/sweep.js';
import { canBootVms } from './published-boot-image.js';
import type { VmFleetReport } from './vm-fleet-report.js';

const VM_FLEET_BIN = join(process.cwd(), 'dist', 'integration', 'vm', 'vm-fleet.js');
const K = 2;

test('1 host × 2 VMs from lazybd disks and from local qcow2 overlays, after a single-VM reference: all boot, egress as the disks imply, all cleaned up', async () => {
  if (!(await canBootVms(...HARNESS_TOOLS))) return;
  const r = await runHarness<VmFleetReport>(['--hosts', '1', '--vms', String(K), '--mode', 'registry', '--rounds', '1', '--boot-timeout', '300', '--step-timeout', '120'], 900_000, VM_FLEET_BIN);
  assert.is(r.status, 0, r.stderr);
  const report = r.report!;

  const [ref] = report.reference;
  assert.ok(ref && ref.localRawMs > 0 && ref.lazyMs > 0, JSON.stringify(report.reference));
  // The boot reads megabytes of a 300 MiB image; the registry sends those chunks once, plus metadata.
  assert.ok(ref.workingSetBytes > 4 << 20 && ref.workingSetBytes < 0.5 * report.image.dataBytes, `working set ${ref.workingSetBytes} of ${report.image.dataBytes}`);
  assert.ok(ref.registryEgressBytes >= ref.workingSetBytes && ref.registryEgressBytes <= 1.2 * ref.workingSetBytes, `registry sent ${ref.registryEgressBytes} for a working set of ${ref.workingSetBytes}`);
  assert.ok(ref.sourceBytes.registry! >= ref.workingSetBytes, JSON.stringify(ref.sourceBytes));

  const [qcow2] = report.qcow2;
  const [lazy] = report.lazy;
  for (const phase of [qcow2!, lazy!]) {
    assert.is(phase.stats.booted, K, JSON.stringify(phase.vms.map((v) => v.failure)));
    for (const v of phase.vms) assert.ok(v.bootMs > 0 && v.guestUptimeS > 0 && v.bootMs / 1000 > v.guestUptimeS, JSON.stringify(v));
  }
  const [host] = lazy!.hosts;
  assert.ok(host!.rxBytes >= lazy!.registryEgressBytes * 0.95, 'the host received what the registry sent');
  if (lazy!.disks === 'serve-upper') {
    // One daemon and cache a disk: each fetches the working set on its own.
    assert.ok(lazy!.registryEgressBytes >= 0.9 * K * ref.registryEgressBytes, `${K} serve-upper disks cost ${lazy!.registryEgressBytes}, one ${ref.registryEgressBytes}`);
  } else {
    // Clones share the daemon's cache: the host fetches each chunk once, however many VMs boot.
    assert.ok(lazy!.registryEgressBytes <= 1.2 * ref.workingSetBytes, `${K} clones cost ${lazy!.registryEgressBytes}, the working set is ${ref.workingSetBytes}`);
  }

  assert.equal(await findRunResources(report.run), { namespaces: [], interfaces: [], directories: [] });
});

test.run();
