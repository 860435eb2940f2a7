#!/usr/bin/env node
// The datacenter harness (issue 9): a registry, optional mirror or supernodes, and N nodes,
// each in its own network namespace on one shaped bridge; all nodes start at once and
// replay a start-up trace; the figures are registry egress, cache egress and time-to-ready.
// Run: npx tsc -p . && node dist/integration/scale/datacenter.js --nodes 10 --mode registry,mirror
// See integration/scale/README.md.
import { freemem } from 'node:os';
import { runDatacenter, type DatacenterOptions } from './datacenter-run.js';
import { harnessMain, listOption, numberOption, parseHarnessArgs, requireHarnessTools, UsageError } from './harness-main.js';
import { MODES, type ModeName } from './modes.js';
import { formatTable } from './report.js';
import { supernodeAvailable } from './supernode.js';

const USAGE = `  --nodes N              nodes started at once (default 10)
  --mode M[,M…]          ${MODES.join(', ')} (default registry,mirror)
  --image-mib M          virtual size of the test image (default 1024)
  --data-fraction F      share of the image that holds data (default 0.25)
  --trace-fraction F     share of the data the start-up reads touch (default 0.06)
  --waves W              fleet starts per mode on the same services; wave 2 meets a warm cache (default 1)
  --stagger-ms S         node i starts i×S ms after the first, a rollout rather than one instant (default 0)
  --io-timeout S         the nodes' lazybd --io-timeout: an unserved read fails after S s (default 30, lazybd's)
  --seed S               image layout and reads (default 1)`;

/** Memory a node and its share of the kernel's socket buffers take, with headroom. */
const NODE_MEMORY = 150 * 2 ** 20;
const BASE_MEMORY = 2 * 2 ** 30;

function options(): { o: DatacenterOptions; json: boolean; cleanup: boolean; timeoutS: number } {
  const { values, common, ...rest } = parseHarnessArgs('dist/integration/scale/datacenter.js', {
    nodes: { type: 'string', default: '10' },
    mode: { type: 'string', default: 'registry,mirror' },
    'image-mib': { type: 'string', default: '1024' },
    'data-fraction': { type: 'string', default: '0.25' },
    'trace-fraction': { type: 'string', default: '0.06' },
    seed: { type: 'string', default: '1' },
    'io-timeout': { type: 'string', default: '30' },
    waves: { type: 'string', default: '1' },
    'stagger-ms': { type: 'string', default: '0' },
  }, USAGE, { stepHelp: "bound on each node's start+replay and each service start", timeoutS: 3600 });
  const num = (name: string, min: number, max: number, integer = true) => numberOption(values, name, min, max, integer);
  return {
    o: {
      ...common,
      nodes: num('nodes', 1, 1000),
      modes: listOption<ModeName>(String(values.mode), 'mode', MODES),
      imageMiB: num('image-mib', 4, 1 << 20),
      dataFraction: num('data-fraction', 0.001, 1, false),
      traceFraction: num('trace-fraction', 0.0001, 1, false),
      chunkSize: 65536,
      seed: num('seed', 0, 2 ** 31),
      waves: num('waves', 1, 100),
      ioTimeoutS: num('io-timeout', 1, 86_400),
      staggerMs: num('stagger-ms', 0, 600_000),
    },
    ...rest,
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
