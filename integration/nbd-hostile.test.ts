// Broken and hostile clients over a raw socket: the server drops or answers
// them and keeps serving everyone else; memory per connection stays bounded.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { BlockDevice } from '../lib/device/block-device.js';
import { Cmd, Opt, REP_ACK, REP_ERR_POLICY, REP_ERR_UNSUP, REP_SERVER } from '../lib/nbd/protocol.js';
import { RawClient, enter, hello, option, readOptionReply, request, simpleReply } from './support/nbd-wire.js';
import { waitFor } from './support/processes.js';
import { requireTools } from './support/tools.js';
import { pattern, run, serve, type Served } from './nbd-fixture.js';

const MiB = 1024 * 1024;

/** A healthy client still gets served (and the data is right). */
async function assertServing(s: Served, name: string, expected: Buffer): Promise<void> {
  const c = await enter(s.socket, name);
  c.write(request(Cmd.READ, 77, 0, expected.length));
  assert.equal(await simpleReply(c), { error: 0, cookie: 77 });
  assert.ok((await c.read(expected.length)).equals(expected));
  c.close();
}

const content = pattern(64 * 1024, 9);

test('bad magic, absurd option length, unknown client flags: dropped; others unaffected', async () => {
  const s = await serve([{ name: 'x', size: MiB, content }]);
  try {
    const badMagic = await hello(s.socket);
    badMagic.write(Buffer.from('NOTMAGIC\0\0\0\x07\0\0\0\0'));
    assert.ok(await badMagic.closedWithin(2000), 'bad option magic closes');

    const absurd = await hello(s.socket);
    absurd.write(option(Opt.INFO, Buffer.alloc(0), 0xfffffff0));
    assert.ok(await absurd.closedWithin(2000), 'absurd option length closes');

    const flags = await RawClient.open(s.socket);
    await flags.read(18);
    flags.write(Buffer.from([0x80, 0, 0, 1]));
    assert.ok(await flags.closedWithin(2000), 'unknown client flags close');

    const badRequest = await enter(s.socket, 'x');
    badRequest.write(Buffer.alloc(28, 0xee));
    assert.ok(await badRequest.closedWithin(2000), 'bad request magic closes');

    await assertServing(s, 'x', content);
    assert.ok(s.logs.some((l) => /dropped: bad option magic/.test(l)), s.logs.join('\n'));
  } finally {
    await s.stop();
  }
});

test('unknown option: ERR_UNSUP with payload consumed; STARTTLS without TLS: ERR_POLICY', async () => {
  const s = await serve([{ name: 'x', size: MiB, content }]);
  try {
    const c = await hello(s.socket);
    c.write(option(1234, Buffer.alloc(300, 0x55)));
    const unsup = await readOptionReply(c);
    assert.is(unsup.option, 1234);
    assert.is(unsup.type, REP_ERR_UNSUP);
    c.write(option(Opt.STARTTLS));
    assert.is((await readOptionReply(c)).type, REP_ERR_POLICY);
    c.write(option(Opt.LIST));
    const entry = await readOptionReply(c);
    assert.is(entry.type, REP_SERVER);
    assert.is(entry.data.toString('latin1', 4, 4 + entry.data.readUInt32BE(0)), 'x');
    assert.is((await readOptionReply(c)).type, REP_ACK);
    c.write(option(Opt.ABORT));
    assert.is((await readOptionReply(c)).type, REP_ACK);
    assert.ok(await c.closedWithin(2000));
  } finally {
    await s.stop();
  }
});

test('unknown command: EINVAL and the connection stays usable; truncated and mid-payload disconnects', async () => {
  const s = await serve([{ name: 'x', size: MiB, content }]);
  try {
    const c = await enter(s.socket, 'x');
    c.write(request(42, 1, 0, 512));
    assert.equal(await simpleReply(c), { error: 22, cookie: 1 });
    c.write(request(Cmd.READ, 2, 0, 16));
    assert.equal(await simpleReply(c), { error: 0, cookie: 2 });
    assert.ok((await c.read(16)).equals(content.subarray(0, 16)));
    c.close();

    // Half a request header, then gone.
    const truncated = await enter(s.socket, 'x');
    truncated.write(request(Cmd.READ, 3, 0, 16).subarray(0, 13));
    truncated.close();
    // A WRITE whose payload never finishes: nothing may reach the device.
    const midPayload = await enter(s.socket, 'x');
    midPayload.write(request(Cmd.WRITE, 4, 0, 65536, Buffer.alloc(65536, 0xff)).subarray(0, 28 + 30000));
    await new Promise((r) => setTimeout(r, 50));
    midPayload.close();
    // Half an option, then gone.
    const halfOption = await hello(s.socket);
    halfOption.write(option(Opt.GO, Buffer.alloc(40)).subarray(0, 30));
    halfOption.close();

    await waitFor(() => s.server.connectionCount === 0, 5000, 'connections to close');
    await assertServing(s, 'x', content);
  } finally {
    await s.stop();
  }
});

test('NBD_OPT_EXPORT_NAME with and without trailing zeroes; unknown name closes', async () => {
  const s = await serve([{ name: 'x', size: MiB, content }]);
  try {
    for (const noZeroes of [true, false]) {
      const c = await RawClient.open(s.socket);
      await c.read(18);
      c.write(Buffer.from([0, 0, 0, noZeroes ? 3 : 1]));
      c.write(option(Opt.EXPORT_NAME, Buffer.from('x')));
      const reply = await c.read(noZeroes ? 10 : 134);
      assert.is(Number(reply.readBigUInt64BE(0)), MiB);
      assert.is(reply.readUInt16BE(8) & 1, 1, 'HAS_FLAGS');
      c.write(request(Cmd.READ, 5, 100, 8));
      assert.equal(await simpleReply(c), { error: 0, cookie: 5 });
      assert.ok((await c.read(8)).equals(content.subarray(100, 108)), 'no stray zeroes before the reply');
      c.close();
    }
    const unknown = await hello(s.socket);
    unknown.write(option(Opt.EXPORT_NAME, Buffer.from('nope')));
    assert.ok(await unknown.closedWithin(2000));
  } finally {
    await s.stop();
  }
});

test('a client that never finishes the handshake is dropped after the timeout', async () => {
  const s = await serve([{ name: 'x', size: MiB, content }], { handshakeTimeoutMs: 150 });
  try {
    const idle = await hello(s.socket);
    assert.ok(await idle.closedWithin(2000), 'idle client dropped');
    // The timeout ends with the handshake: a served connection idles freely.
    const served = await enter(s.socket, 'x');
    assert.not.ok(await served.closedWithin(400), 'served client kept');
    served.close();
  } finally {
    await s.stop();
  }
});

test('2000 connections opened and dropped; a normal client still works', async () => {
  const s = await serve([{ name: 'x', size: MiB, content }]);
  try {
    for (let round = 0; round < 20; round++) {
      await Promise.all(
        Array.from({ length: 100 }, async (_, i) => {
          const c = await RawClient.open(s.socket);
          // A mix: gone at once, gone after the greeting, gone mid-option.
          if (i % 3 === 1) await c.read(18);
          if (i % 3 === 2) c.write(Buffer.from([0, 0, 0, 3, 0x49, 0x48]));
          c.close();
        }),
      );
    }
    await waitFor(() => s.server.connectionCount === 0, 10_000, 'dropped connections to be reaped');
    await assertServing(s, 'x', content);
    if (await requireTools('nbdinfo')) {
      const out = (await run('nbdinfo', ['--size', s.uri('x')])).stdout.trim();
      assert.is(out, String(MiB));
    }
  } finally {
    await s.stop();
  }
});

test('a client that stops reading replies stalls its own connection at the memory cap', async () => {
  const s = await serve([{ name: 'x', size: 64 * MiB }], { maxBufferedBytes: 2 * MiB });
  let reads = 0;
  const device = s.devices.get('x')!;
  // Count device reads by whichever path the server takes (readInto when the device has it).
  const read = device.read.bind(device);
  (device as { read: BlockDevice['read'] }).read = (offset, length) => {
    reads++;
    return read(offset, length);
  };
  const readInto = device.readInto?.bind(device);
  if (readInto) {
    (device as { readInto: NonNullable<BlockDevice['readInto']> }).readInto = (offset, length, target, at) => {
      reads++;
      return readInto(offset, length, target, at);
    };
  }
  try {
    const c = await enter(s.socket, 'x');
    c.socket.pause(); // stop reading replies
    const total = 48;
    for (let i = 0; i < total; i++) {
      c.write(request(Cmd.READ, i, i * MiB, MiB));
      await new Promise((r) => setTimeout(r, 5));
    }
    await new Promise((r) => setTimeout(r, 200));
    assert.ok(reads < 16, `server kept reading requests: ${reads} device reads with replies unread`);
    c.socket.resume();
    const seen = new Set<number>();
    for (let i = 0; i < total; i++) {
      const r = await simpleReply(c);
      assert.is(r.error, 0);
      seen.add(r.cookie);
      await c.read(MiB);
    }
    assert.is(seen.size, total);
    assert.is(reads, total);
    c.close();
  } finally {
    await s.stop();
  }
});

test('close() drops live connections and refuses new ones, leaving devices open', async () => {
  const s = await serve([{ name: 'x', size: MiB, content }]);
  try {
    const live = await enter(s.socket, 'x');
    const negotiating = await hello(s.socket);
    await s.server.close();
    assert.ok(await live.closedWithin(2000), 'serving connection dropped');
    assert.ok(await negotiating.closedWithin(2000), 'negotiating connection dropped');
    assert.is(s.server.connectionCount, 0);
    const refused = await RawClient.open(s.socket).then(() => false, () => true);
    assert.ok(refused, 'no longer listening');
    const data = await s.devices.get('x')!.read(0, 64);
    assert.ok(data.equals(content.subarray(0, 64)), 'device still usable');
  } finally {
    await s.stop();
  }
});

test.run();
