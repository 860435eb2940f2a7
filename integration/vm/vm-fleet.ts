#!/usr/bin/env node
// The VM fleet harness (issue 11): M hosts of the datacenter harness, each booting K Debian VMs
// at once under qemu TCG from lazybd disks of one registry image, against the same K VMs from
// local qcow2 overlays on a local raw base; boot time to the guest's marker, registry and
// supernode egress, bytes each host fetched. See integration/vm/README.md.
// Run: npx tsc -p . && node dist/integration/vm/vm-fleet.js --hosts 1 --vms 1,2,4 --mode registry
import { freemem } from 'node:os';
import { harnessMain, listOption, numberOption, parseHarnessArgs, requireHarnessTools, UsageError } from '../scale/harness-main.js';
import { supernodeAvailable } from '../scale/supernode.js';
import { VM_TOOLS } from './boot-image.js';
import { formatVmTable } from './vm-fleet-report.js';
import { DISK_KINDS, runVmFleet, VM_MODES, type DiskKind, type VmFleetOptions, type VmMode } from './vm-fleet-run.js';

const USAGE = `  --hosts M              simulated hosts (network namespaces), one lazybd daemon each (default 1)
  --vms K[,K…]           VMs a host booting at once, one fleet start per K (default 1,2,4)
  --mode M[,M…]          ${VM_MODES.join(', ')} (default registry)
  --disks D              ${DISK_KINDS.join(', ')}: how a host makes its VMs' disks (default ${DISK_KINDS[0]})
  --rounds R             runs of the reference and of every fleet start, order alternating; tables keep the best (default 1)
  --no-reference         skip the single-VM reference (local raw vs lazybd serve, working set)
  --memory-mib N         guest memory (default 512)
  --accel A              tcg or kvm (default tcg: KVM does not boot Linux on the machines this was written on)
  --prefetch-rate R      MB/s of prefetch on the fleet's daemons, the first reference boot's trace first (default 0: none)
  --boot-timeout S       bound on one VM's boot to its marker and power-off (default 600)`;

/** A TCG guest's resident memory beyond its RAM, and a daemon's. */
const VM_OVERHEAD = 200 * 2 ** 20;
const BASE_MEMORY = 2 * 2 ** 30;

function options(): { o: VmFleetOptions; json: boolean; cleanup: boolean; timeoutS: number } {
  const { values, common, ...rest } = parseHarnessArgs('dist/integration/vm/vm-fleet.js', {
    hosts: { type: 'string', default: '1' },
    vms: { type: 'string', default: '1,2,4' },
    mode: { type: 'string', default: 'registry' },
    disks: { type: 'string', default: DISK_KINDS[0] },
    rounds: { type: 'string', default: '1' },
    reference: { type: 'boolean', default: true },
    'memory-mib': { type: 'string', default: '512' },
    accel: { type: 'string', default: 'tcg' },
    'boot-timeout': { type: 'string', default: '600' },
    'prefetch-rate': { type: 'string', default: '0' },
  }, USAGE, { stepHelp: 'bound on each service start and CLI call', timeoutS: 7200 });
  const num = (name: string, min: number, max: number) => numberOption(values, name, min, max);
  return {
    o: {
      ...common,
      hosts: num('hosts', 1, 250),
      vmsPerHost: String(values.vms).split(',').map((k) => numberOption({ vms: k }, 'vms', 1, 64)),
      modes: listOption<VmMode>(String(values.mode), 'mode', VM_MODES),
      disks: listOption<DiskKind>(String(values.disks), 'disks', DISK_KINDS)[0]!,
      rounds: num('rounds', 1, 20),
      reference: values.reference as boolean,
      memoryMiB: num('memory-mib', 128, 16384),
      accel: listOption(String(values.accel), 'accel', ['tcg', 'kvm'] as const)[0]!,
      bootTimeoutMs: num('boot-timeout', 10, 86_400) * 1000,
      prefetchRate: numberOption(values, 'prefetch-rate', 0, 10_000, false),
    },
    ...rest,
  };
}

async function preflight(o: VmFleetOptions): Promise<void> {
  if (o.prefetchRate > 0 && !o.reference) throw new UsageError('--prefetch-rate prefetches the trace of the reference boot: it needs the reference');
  await requireHarnessTools(['ip', 'tc', 'curl', 'docker-registry', ...VM_TOOLS]);
  if (o.modes.some((m) => m.startsWith('supernode')) && !(await supernodeAvailable())) throw new UsageError('the supernode modes need `lazybd supernode`, which this build lacks');
  const need = BASE_MEMORY + o.hosts * Math.max(...o.vmsPerHost) * (o.memoryMiB * 2 ** 20 + VM_OVERHEAD);
  if (freemem() < need) throw new UsageError(`${o.hosts} × ${Math.max(...o.vmsPerHost)} VMs need about ${(need / 2 ** 30).toFixed(1)} GiB of free memory; ${(freemem() / 2 ** 30).toFixed(1)} GiB are free`);
}

harnessMain(() => {
  const { o, json, cleanup, timeoutS } = options();
  return {
    tag: 'vm-fleet',
    json,
    cleanup,
    timeoutS,
    preflight: () => preflight(o),
    run: (run, log, onDatacenter) => runVmFleet(run, o, log, onDatacenter),
    format: formatVmTable,
    succeeded: (r) => r.errors.length === 0 && [...r.lazy, ...r.qcow2].every((p) => p.stats.booted === p.stats.vms),
  };
});
