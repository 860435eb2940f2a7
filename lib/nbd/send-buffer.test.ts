import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect, createServer, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fileIoBackend } from '../store/native-io.js';
import { UNIX_SEND_BUFFER, widenSendBuffer } from './send-buffer.js';

// Runs on the loaded backend; integration/pure-file-io.test.ts runs it again with LAZYBD_NATIVE=0.

/** Two connected unix sockets: [server side, client side]. */
async function socketPair(path: string): Promise<{ pairs: [Socket, Socket][]; close: () => Promise<void> }> {
  const accepted: Socket[] = [];
  const server = createServer((s) => accepted.push(s));
  server.listen(path);
  await once(server, 'listening');
  const clients = [connect(path), connect(path)];
  await Promise.all(clients.map((c) => once(c, 'connect')));
  while (accepted.length < 2) await new Promise((r) => setImmediate(r));
  return {
    pairs: [
      [accepted[0]!, clients[0]!],
      [accepted[1]!, clients[1]!],
    ],
    close: async () => {
      for (const s of [...accepted, ...clients]) s.destroy();
      server.close();
      await once(server, 'close');
    },
  };
}

test('a widened unix socket takes a whole 1 MiB reply in one write; the default one does not', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'lazybd-sndbuf-'));
  const { pairs, close } = await socketPair(join(dir, 's'));
  try {
    const [[widened, reader], [plain, plainReader]] = pairs;
    reader.pause();
    plainReader.pause();
    const granted = widenSendBuffer(widened);
    if (fileIoBackend.kind === 'pure') {
      assert.is(granted, null, 'the pure backend cannot set SO_SNDBUF');
      return;
    }
    const wmemMax = Number(readFileSync('/proc/sys/net/core/wmem_max', 'utf8'));
    assert.is(granted, 2 * Math.min(UNIX_SEND_BUFFER, wmemMax), 'Linux doubles the request, capped by wmem_max');
    const reply = Buffer.alloc(1 << 20, 7);
    widened.write(reply);
    plain.write(reply);
    await new Promise((r) => setImmediate(r));
    assert.ok(plain.writableLength > 0, 'the default buffer holds only part of 1 MiB while the client does not read');
    if (wmemMax >= UNIX_SEND_BUFFER) assert.is(widened.writableLength, 0, 'all of it went into the widened buffer at once');
    // And the bytes arrive intact.
    reader.resume();
    let got = 0;
    for await (const chunk of reader) {
      assert.ok((chunk as Buffer).every((b) => b === 7));
      got += (chunk as Buffer).length;
      if (got === reply.length) break;
    }
    assert.is(got, reply.length);
  } finally {
    await close();
    await rm(dir, { recursive: true, force: true });
  }
});

test('a socket without a file descriptor is left alone', () => {
  assert.is(widenSendBuffer(new Socket()), null, 'not connected: no handle');
});

test.run();
