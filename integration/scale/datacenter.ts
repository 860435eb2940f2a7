#!/usr/bin/env node
// The datacenter harness (issue 9): a registry, optional mirror or supernodes, and N nodes,
// each in its own network namespace on one shaped bridge; all nodes start at once and
// replay a start-up trace; the figures are registry egress, cache egress and time-to-ready.
// Run: npx tsc -p . && node dist/integration/scale/datacenter.js --nodes 10 --mode registry,mirror
// See integration/scale/README.md.
import { freemem } from 'node:os';
import { parseArgs } from 'node:util';
import { runDatacenter, type DatacenterOptions } from './datacenter-run.js';
import { harnessMain, numberOption, requireHarnessTools, UsageError } from './harness-main.js';
import { MODES, type ModeName } from './modes.js';
import { formatTable } from './report.js';
import { supernodeAvailable } from './supernode.js';

const USAGE = `usage: node dist/integration/scale/datacenter.js [options]
  --nodes N              nodes started at once (default 10)
  --mode M[,M…]          ${MODES.join(', ')} (default registry,mirror)
  --image-mib M          virtual size of the test image (default 1024)
  --data-fraction F      share of the image that holds data (default 0.25)
  --trace-fraction F     share of the data the start-up reads touch (default 0.06)
  --supernodes K         supernodes in the supernode modes (default 1)
  --registry-mbit R      registry link rate (default 200)
  --link-mbit R          every other link's rate (default 1000)
  --rtt-us U             round-trip time between any two hosts (default 500)
  --waves W              fleet starts per mode on the same services; wave 2 meets a warm cache (default 1)
  --stagger-ms S         node i starts i×S ms after the first, a rollout rather than one instant (default 0)
  --io-timeout S         the nodes' lazybd --io-timeout: an unserved read fails after S s (default 30, lazybd's)
  --seed S               image layout and reads (default 1)
  --step-timeout S       bound on each node's start+replay and each service start (default 300)
  --timeout S            bound on the whole run (default 3600)
  --json                 the report as JSON on stdout (progress stays on stderr)
  --cleanup              only remove leftovers of killed runs, then exit`;

/** Memory a node and its share of the kernel's socket buffers take, with headroom. */
const NODE_MEMORY = 150 * 2 ** 20;
const BASE_MEMORY = 2 * 2 ** 30;

function options(): { o: DatacenterOptions; json: boolean; cleanup: boolean; timeoutS: number } {
  const { values } = parseArgs({
    options: {
      nodes: { type: 'string', default: '10' },
      mode: { type: 'string', default: 'registry,mirror' },
      'image-mib': { type: 'string', default: '1024' },
      'data-fraction': { type: 'string', default: '0.25' },
      'trace-fraction': { type: 'string', default: '0.06' },
      supernodes: { type: 'string', default: '1' },
      'registry-mbit': { type: 'string', default: '200' },
      'link-mbit': { type: 'string', default: '1000' },
      'rtt-us': { type: 'string', default: '500' },
      seed: { type: 'string', default: '1' },
      'io-timeout': { type: 'string', default: '30' },
      waves: { type: 'string', default: '1' },
      'stagger-ms': { type: 'string', default: '0' },
      'step-timeout': { type: 'string', default: '300' },
      timeout: { type: 'string', default: '3600' },
      json: { type: 'boolean', default: false },
      cleanup: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const num = (name: keyof typeof values, min: number, max: number, integer = true) => numberOption(values, name, min, max, integer);
  const modes = values.mode!.split(',').map((m) => m.trim());
  for (const m of modes) if (!(MODES as readonly string[]).includes(m)) throw new UsageError(`unknown mode ${m} (modes: ${MODES.join(', ')})`);
  return {
    o: {
      nodes: num('nodes', 1, 1000),
      modes: modes as ModeName[],
      imageMiB: num('image-mib', 4, 1 << 20),
      dataFraction: num('data-fraction', 0.001, 1, false),
      traceFraction: num('trace-fraction', 0.0001, 1, false),
      chunkSize: 65536,
      seed: num('seed', 0, 2 ** 31),
      waves: num('waves', 1, 100),
      supernodes: num('supernodes', 1, 240),
      registryMbit: num('registry-mbit', 1, 100_000),
      linkMbit: num('link-mbit', 1, 100_000),
      rttUs: num('rtt-us', 0, 1_000_000),
      ioTimeoutS: num('io-timeout', 1, 86_400),
      stepTimeoutMs: num('step-timeout', 5, 86_400) * 1000,
      staggerMs: num('stagger-ms', 0, 600_000),
    },
    json: values.json!,
    cleanup: values.cleanup!,
    timeoutS: num('timeout', 10, 7 * 86_400),
  };
}

async function preflight(o: DatacenterOptions): Promise<void> {
  await requireHarnessTools(['ip', 'tc', 'setpriv', 'curl', 'docker-registry']);
  if (o.modes.some((m) => m.startsWith('supernode')) && !(await supernodeAvailable())) throw new UsageError('the supernode modes need `lazybd supernode`, which this build lacks');
  const need = BASE_MEMORY + o.nodes * NODE_MEMORY;
  if (freemem() < need) throw new UsageError(`${o.nodes} nodes need about ${(need / 2 ** 30).toFixed(1)} GiB of free memory; ${(freemem() / 2 ** 30).toFixed(1)} GiB are free`);
}

harnessMain(() => {
  const { o, json, cleanup, timeoutS } = options();
  return {
    tag: 'datacenter',
    json,
    cleanup,
    timeoutS,
    preflight: () => preflight(o),
    run: (run, log, onDatacenter) => runDatacenter(run, o, log, onDatacenter),
    format: formatTable,
    succeeded: (report) => report.modes.every((m) => m.nodesReady === m.nodes),
  };
});
