#!/usr/bin/env node
import sade from 'sade';
import { lazyCommand } from '../lib/cli/run-command.js';

// Commands load their modules when run: `lazybd create` need not load the registry client
// or the metrics library, and every invocation (a daemon's start too) starts sooner.
const prog = sade('lazybd')
  .version('0.1.0')
  .describe('Lazily-loaded block-device images over NBD')
  .option('--store', 'Local image store directory (default $LAZYBD_STORE or ~/.local/share/lazybd)')
  .option('--json', 'Machine-readable output on stdout, no progress bars')
  .option('--debug', 'Print stack traces on errors');

const registryOptions = (cmd: ReturnType<typeof prog.command>) =>
  cmd
    .option('--plain-http', 'Speak http to the registry (default https)')
    .option('--username', 'Registry user; the password is read from stdin (--password-stdin)')
    .option('--password-stdin', 'Read the registry password from stdin')
    .option('--tls-verify', 'Verify the registry TLS certificate (--no-tls-verify to skip)', true)
    .option('--ca-file', 'Extra CA certificate (PEM) for the registry');

prog
  .command('create <raw-image> <name:tag>')
  .describe('Create a one-layer image from a raw disk image (zero blocks become holes)')
  .option('--chunk-size', 'Verification/fetch chunk size in bytes (power of two, 4 KiB–16 MiB)', 65536)
  .action(lazyCommand(() => import('../lib/cli/image-commands.js'), 'createCommand'));

prog.command('inspect <name:tag>').describe('Show layers, sizes, extent and chunk counts, digests').action(lazyCommand(() => import('../lib/cli/image-commands.js'), 'inspectCommand'));
prog.command('export <name:tag> <out.raw>').describe('Flatten the image to a sparse raw file').action(lazyCommand(() => import('../lib/cli/image-commands.js'), 'exportCommand'));
prog.command('verify <name:tag>').describe('Check every chunk of every layer against its digest').action(lazyCommand(() => import('../lib/cli/image-commands.js'), 'verifyCommand'));
prog.command('images').describe('List images in the local store').action(lazyCommand(() => import('../lib/cli/image-commands.js'), 'imagesCommand'));
prog.command('rm <name:tag>').describe('Remove an image; blobs other images use stay').action(lazyCommand(() => import('../lib/cli/image-commands.js'), 'rmCommand'));

registryOptions(prog
  .command('serve <image>')
  .describe('Export images (name:tag or registry refs, pulled lazily) over NBD (unix socket by default); more images may follow the first'))
  .option('--upper', 'Directory of the writable upper file (created if absent)')
  .option('--read-only', 'Refuse writes')
  .option('--socket', 'Unix socket path (default $XDG_RUNTIME_DIR/lazybd/<export>.sock)')
  .option('--listen', 'TCP HOST:PORT instead of a unix socket (host defaults to 127.0.0.1)')
  .option('--export', 'Export name (default: the image ref)')
  .option('--tls-cert', 'PEM certificate: enables STARTTLS (nbds://)')
  .option('--tls-key', 'PEM private key for --tls-cert')
  .option('--metrics', 'Serve Prometheus metrics at HOST:PORT/metrics')
  .option('--prefetch-rate', 'Background completion of lazily pulled images, MB/s (0: off)', 16)
  .option('--record-trace', 'Write the order of first chunk reads to FILE on exit')
  .option('--cache-dir', 'Chunk cache directory (default <store>/chunk-cache)')
  .option('--cache-size', 'Chunk cache limit, GiB', 10)
  .option('--io-timeout', 'Seconds before a read no source can serve fails with EIO', 30)
  .option('--p2p', 'Fetch chunks from and serve them to neighbours (on with --p2p-bootstrap; --no-p2p: off)')
  .option('--p2p-bootstrap', 'DHT bootstrap nodes HOST:PORT,... (the public DHT is never used)')
  .option('--p2p-host', 'Address the P2P node binds to (default 127.0.0.1)')
  .option('--p2p-upload-rate', 'Uploads to neighbours, MB/s in all (0: unlimited)', 32)
  .option('--p2p-max-uploads', 'Neighbours served at once (the others are choked)', 8)
  .action(lazyCommand(() => import('../lib/cli/daemon-commands.js'), 'serveCommand'));

prog
  .command('p2p-bootstrap')
  .describe('Run the DHT of a closed P2P network (a bootstrap node and two persistent nodes) for serve --p2p-bootstrap')
  .option('--listen', 'IPv4 HOST:PORT of the bootstrap node (port 0: any free one)', '127.0.0.1:49737')
  .action(lazyCommand(() => import('../lib/cli/p2p-commands.js'), 'p2pBootstrapCommand'));

prog
  .command('commit <upper-dir> <new-name:tag>')
  .describe('Turn an upper into a new top layer over its base image')
  .action(lazyCommand(() => import('../lib/cli/daemon-commands.js'), 'commitCommand'));

registryOptions(prog.command('push <name:tag> <registry-ref>').describe('Push a local image to an OCI registry (skips blobs it has)')).action(lazyCommand(() => import('../lib/cli/registry-commands.js'), 'pushCommand'));

registryOptions(prog.command('pull <registry-ref> [name:tag]').describe('Pull manifest and layer indexes only (kilobytes); data comes on demand'))
  .option('--full', 'Also download every layer blob')
  .action(lazyCommand(() => import('../lib/cli/registry-commands.js'), 'pullCommand'));

prog
  .command('mount <name:tag> <mountpoint>')
  .describe('Serve an image in the background and mount its filesystem (read-only without --upper)')
  .option('--upper', 'Directory of the writable upper file (created if absent)')
  .option('--read-only', 'Mount read-only even with an upper')
  .option('--fstype', 'Filesystem type for mount -t (default: probed)')
  .action(lazyCommand(() => import('../lib/cli/mount-commands.js'), 'mountCommand'));

prog.command('umount <mountpoint>').describe('Unmount and stop what lazybd mount started').action(lazyCommand(() => import('../lib/cli/mount-commands.js'), 'umountCommand'));

prog.command('status').describe('Running daemons: exports, bytes local vs total, sources, prefetch').action(lazyCommand(() => import('../lib/cli/status-commands.js'), 'statusCommand'));
prog.command('trace attach <name:tag> <trace-file>').describe('Store a recorded start-up trace with an image (serve prefetches it first)').action(lazyCommand(() => import('../lib/cli/status-commands.js'), 'traceAttachCommand'));
prog
  .command('cache gc')
  .describe('Remove cached chunks no stored image uses and corrupt ones; trim to --max-size')
  .option('--cache-dir', 'Chunk cache directory (default <store>/chunk-cache)')
  .option('--max-size', 'Trim the cache to this many GiB')
  .action(lazyCommand(() => import('../lib/cli/status-commands.js'), 'cacheGcCommand'));

prog.parse(process.argv);
