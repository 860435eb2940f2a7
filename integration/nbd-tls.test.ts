// STARTTLS with a self-signed certificate made by openssl; libnbd clients over nbds+unix://.
import { createHash } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { NbdLogger } from '../lib/nbd/logger.js';
import { NbdServer } from '../lib/nbd/server.js';
import { requireTools } from './support/tools.js';
import { pattern, run, serve } from './nbd-fixture.js';

const MiB = 1024 * 1024;
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** A self-signed cert in `dir` laid out as libnbd's tls-certificates directory expects (ca-cert.pem). */
async function makeCert(dir: string): Promise<{ cert: Buffer; key: Buffer }> {
  await mkdir(dir, { recursive: true });
  await run('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'ca-cert.pem'), '-days', '2',
    '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost',
  ]);
  return { cert: await readFile(join(dir, 'ca-cert.pem')), key: await readFile(join(dir, 'key.pem')) };
}

const quiet: NbdLogger = { debug() {}, info() {}, warn() {} };
const fails = (p: Promise<unknown>) => p.then(() => false, () => true);

test('required TLS: nbds:// works, plaintext and wrong CA are refused', async () => {
  if (!(await requireTools('openssl', 'nbdinfo', 'nbdcopy'))) return;
  const data = pattern(4 * MiB, 17);
  // The certificate has to exist before the server starts, so serve() gets it via a second temp dir.
  const certs = await serve([]);
  try {
    const good = await makeCert(join(certs.dir, 'good'));
    await makeCert(join(certs.dir, 'wrong'));
    const s = await serve([{ name: 'sec', size: 4 * MiB, content: data }], { tls: good });
    try {
      const secure = `${s.uri('sec', 'nbds+unix')}&tls-certificates=${join(certs.dir, 'good')}`;
      const info = JSON.parse((await run('nbdinfo', ['--json', secure])).stdout);
      assert.is(info.TLS, true);
      assert.is(info.exports[0]['export-size'], 4 * MiB);
      const copy = join(s.dir, 'copy.raw');
      await run('nbdcopy', [secure, copy]);
      assert.is(sha256(await readFile(copy)), sha256(data));

      assert.ok(await fails(run('nbdinfo', [s.uri('sec')])), 'plaintext client refused');
      // libnbd checks the peer certificate only when it knows a host name, so this part goes over TCP.
      const tcp = new NbdServer({ exports: [{ name: 'sec', device: s.devices.get('sec')! }], tls: good, logger: quiet });
      try {
        const { port } = await tcp.listen({ port: 0 });
        const over = (dir: string) => `nbds://localhost:${port}/sec?tls-certificates=${join(certs.dir, dir)}`;
        assert.ok(await fails(run('nbdinfo', [over('wrong')])), 'client not trusting the cert fails');
        assert.is((await run('nbdinfo', ['--size', over('good')])).stdout.trim(), String(4 * MiB));
      } finally {
        await tcp.close();
      }
      // The failed handshakes did not disturb the server.
      assert.is((await run('nbdinfo', ['--size', secure])).stdout.trim(), String(4 * MiB));
    } finally {
      await s.stop();
    }
  } finally {
    await certs.stop();
  }
});

test('optional TLS: both plaintext and nbds:// clients are served', async () => {
  if (!(await requireTools('openssl', 'nbdinfo'))) return;
  const certs = await serve([]);
  try {
    const good = await makeCert(join(certs.dir, 'good'));
    const s = await serve([{ name: 'both', size: MiB }], { tls: { ...good, mode: 'optional' } });
    try {
      const plain = JSON.parse((await run('nbdinfo', ['--json', s.uri('both')])).stdout);
      assert.is(plain.TLS, false);
      const secure = `${s.uri('both', 'nbds+unix')}&tls-certificates=${join(certs.dir, 'good')}`;
      const tls = JSON.parse((await run('nbdinfo', ['--json', secure])).stdout);
      assert.is(tls.TLS, true);
      assert.is(tls.exports[0]['export-size'], MiB);
    } finally {
      await s.stop();
    }
  } finally {
    await certs.stop();
  }
});

test.run();
