// Crash test for the upper: a child process (this same file, started with
// LAZYBD_UPPER_CRASH_CHILD=<dir>) writes in rounds through a LayeredDevice,
// flushing and reporting after each round, until it is SIGKILLed mid-round.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { LayeredDevice } from '../lib/device/layered-device.js';
import type { Lower } from '../lib/device/lower.js';
import { Upper } from '../lib/device/upper/upper.js';
import { spawnOwned, waitFor } from './support/processes.js';
import { seededRandom } from './support/seeded-random.js';

const SIZE = 8 * 1024 * 1024;
const SLOT = 64 * 1024;
const SECTOR = 512;
const OPS_PER_ROUND = 48;
const IN_FLIGHT = 8;

/** The image below: a byte pattern, with the first MiB a hole. */
const lowerBytes = Buffer.alloc(SIZE);
for (let i = 1 << 20; i < SIZE; i++) lowerBytes[i] = (i * 13 + (i >> 12)) & 0xff;
const lower: Lower = {
  size: SIZE,
  read: async (offset, length) => Buffer.from(lowerBytes.subarray(offset, offset + length)),
  status: (offset, length) => [{ length, hole: offset + length <= 1 << 20, zero: offset + length <= 1 << 20 }],
};

interface Op {
  zero: boolean;
  offset: number;
  data: Buffer;
}

/** Round `round`'s operations, identical in child and parent. Each touches its own slot, so their order within a round does not matter. */
function roundOps(round: number): Op[] {
  const rand = seededRandom(round * 7919);
  const slots = new Set<number>();
  while (slots.size < OPS_PER_ROUND) slots.add(rand(SIZE / SLOT));
  return [...slots].map((slot) => {
    const offset = slot * SLOT + rand(SLOT / 2);
    const length = 1 + rand(SLOT / 2);
    const data = Buffer.allocUnsafe(length);
    for (let i = 0; i < length; i++) data[i] = rand(256);
    return { zero: rand(5) === 0, offset, data };
  });
}

async function runChild(dir: string): Promise<void> {
  const dev = new LayeredDevice({ lower, upper: await Upper.open(dir, { virtualSize: SIZE }) });
  for (let round = 1; round < 10_000; round++) {
    const ops = roundOps(round);
    const workers = Array.from({ length: IN_FLIGHT }, async (_, w) => {
      for (let k = w; k < ops.length; k += IN_FLIGHT) {
        const op = ops[k]!;
        if (op.zero) await dev.writeZeroes(op.offset, op.data.length, { noHole: false, fastZero: false, fua: false });
        else await dev.write(op.offset, op.data, false);
      }
    });
    await Promise.all(workers);
    await dev.flush();
    process.stdout.write(`flushed ${round}\n`);
  }
}

function apply(model: Buffer, op: Op): void {
  if (op.zero) model.fill(0, op.offset, op.offset + op.data.length);
  else op.data.copy(model, op.offset);
}

function lastFlushed(output: string): number {
  const rounds = [...output.matchAll(/^flushed (\d+)$/gm)].map((m) => Number(m[1]));
  return rounds.length ? rounds[rounds.length - 1]! : 0;
}

const childDir = process.env.LAZYBD_UPPER_CRASH_CHILD;
if (childDir) {
  await runChild(childDir);
} else {
  test('SIGKILL mid-write: every flushed byte survives; unflushed sectors hold old or new data', async () => {
    for (const delayMs of [0, 3, 15]) {
      const dir = await mkdtemp(join(tmpdir(), 'lazybd-upper-crash-'));
      const child = spawnOwned(process.execPath, [fileURLToPath(import.meta.url)], { env: { ...process.env, LAZYBD_UPPER_CRASH_CHILD: dir } });
      try {
        await waitFor(() => lastFlushed(child.output()) >= 2 || child.child.exitCode !== null, 30_000, 'two flushed rounds');
        await new Promise((r) => setTimeout(r, delayMs));
        child.child.kill('SIGKILL');
        await child.stop();
        assert.is(child.child.signalCode, 'SIGKILL', `child died on its own: ${child.output()}`);
        const flushed = lastFlushed(child.output());

        const model = Buffer.from(lowerBytes);
        for (let round = 1; round <= flushed; round++) for (const op of roundOps(round)) apply(model, op);
        // The round in flight when the child died: each sector holds its flushed value or that op's.
        const after = Buffer.from(model);
        for (const op of roundOps(flushed + 1)) apply(after, op);

        const dev = new LayeredDevice({ lower, upper: await Upper.open(dir, { virtualSize: SIZE }) });
        const got = await dev.read(0, SIZE);
        await dev.close();
        for (let at = 0; at < SIZE; at += SECTOR) {
          const sector = got.subarray(at, at + SECTOR);
          const ok = sector.equals(model.subarray(at, at + SECTOR)) || sector.equals(after.subarray(at, at + SECTOR));
          assert.ok(ok, `delay ${delayMs}: sector at ${at} after ${flushed} flushed rounds`);
        }
        assert.ok(flushed >= 2, `only ${flushed} rounds flushed`);
      } finally {
        await child.stop();
        await rm(dir, { recursive: true, force: true });
      }
    }
  });

  test.run();
}
