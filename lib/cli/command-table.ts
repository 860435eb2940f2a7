import { DEFAULT_CHUNK_SIZE } from '../format/layer-spec.js';
import type { CliSpec, OptionSpec } from './command-spec.js';
import { DEFAULT_CODEC } from '../image/layer-compression.js';
import { DEFAULT_DECODED_CACHE_MIB } from '../source/decoded-cache-size.js';
import { baseUrl, chunkSize, codec, count, gib, hostPort, mib, rate, registryHost, seconds, secondsOrZero, text } from './option-kinds.js';
import { lazyCommand } from './run-command.js';

/*
 * Every lazybd command and option, declared once: bin/lazybd.ts registers them with sade
 * (for --help) and lib/cli/parse-command-line.ts checks and converts a command line
 * against them, so an option missing here is rejected, not silently ignored.
 * Adding an option is one entry in its command's `options`; a repeatable one
 * (`--x A --x B`) says `repeatable: true` and its handler gets an array.
 * Command modules load only when their command runs (faster start, daemons included).
 */

const images = () => import('./image-commands.js');
const daemons = () => import('./daemon-commands.js');
const registries = () => import('./registry-commands.js');
const mounts = () => import('./mount-commands.js');
const statuses = () => import('./status-commands.js');
const controls = () => import('./control-commands.js');
const supernodes = () => import('./supernode-commands.js');
const p2p = () => import('./p2p-commands.js');

export const globalOptions: readonly OptionSpec[] = [
  { name: 'store', kind: text, help: 'Local image store directory (default $LAZYBD_STORE or ~/.local/share/lazybd)' },
  { name: 'json', kind: 'flag', help: 'Machine-readable output on stdout, no progress bars' },
  { name: 'debug', kind: 'flag', help: 'Print stack traces on errors' },
];

/** push, pull, and serve of a registry ref. */
const registryOptions: readonly OptionSpec[] = [
  { name: 'plain-http', kind: 'flag', help: 'Speak http to the registry (default https)' },
  { name: 'username', kind: text, help: 'Registry user; the password is read from stdin (--password-stdin)' },
  { name: 'password-stdin', kind: 'flag', help: 'Read the registry password from stdin' },
  { name: 'tls-verify', kind: 'flag', help: 'Verify the registry TLS certificate (--no-tls-verify to skip)', default: true },
  { name: 'ca-file', kind: text, help: 'Extra CA certificate (PEM) for the registry' },
];

/** serve, pull, preheat: the datacenter's supernodes, asked before the registry. */
const supernodeOptions: readonly OptionSpec[] = [
  { name: 'supernode', kind: baseUrl, repeatable: true, requires: 'token-file', help: 'Supernode URL, asked before the registry (repeat for several: chunks spread by rendezvous hashing)' },
  { name: 'token-file', kind: text, help: 'File holding the bearer token for --supernode (mode 600)' },
];

const chunkSizeOption: OptionSpec = { name: 'chunk-size', kind: chunkSize, help: 'Verification/fetch chunk size in bytes (power of two, 4 KiB–16 MiB)', default: DEFAULT_CHUNK_SIZE };
const compressOption: OptionSpec = { name: 'compress', kind: codec, help: 'How chunks are compressed: none, lz4, zstd[:LEVEL] (a chunk that does not shrink is stored raw)', default: DEFAULT_CODEC };
const upper: OptionSpec = { name: 'upper', kind: text, help: 'Directory of the writable upper file (created if absent)' };
const daemonSocket: OptionSpec = { name: 'daemon', kind: text, help: "The daemon's control socket (default: the only running daemon's)" };
const cacheDir: OptionSpec = { name: 'cache-dir', kind: text, help: 'Chunk cache directory (default <store>/chunk-cache)' };

export const lazybdCli: CliSpec = {
  globalOptions,
  commands: [
    {
      name: 'create',
      args: '<raw-image> <name:tag>',
      describe: 'Create a one-layer image from a raw disk image (zero blocks become holes)',
      options: [chunkSizeOption, compressOption],
      run: lazyCommand(images, 'createCommand'),
    },
    {
      name: 'import',
      args: '<source> <name:tag>',
      describe: 'Import anything qemu-img reads (qcow2, vmdk, vhdx, raw, nbd:// URI) as a one-layer image; backing chains are flattened, holes stay holes',
      options: [chunkSizeOption, compressOption, { name: 'format', kind: text, help: 'Source format (default: probed by qemu-img; set it for untrusted raw files)' }],
      run: lazyCommand(images, 'importCommand'),
    },
    { name: 'inspect', args: '<name:tag>', describe: 'Show layers, sizes, extent and chunk counts, digests', options: [], run: lazyCommand(images, 'inspectCommand') },
    { name: 'export', args: '<name:tag> <out.raw>', describe: 'Flatten the image to a sparse raw file', options: [], run: lazyCommand(images, 'exportCommand') },
    { name: 'verify', args: '<name:tag>', describe: 'Check every chunk of every layer against its digest', options: [], run: lazyCommand(images, 'verifyCommand') },
    { name: 'images', args: '', describe: 'List images in the local store', options: [], run: lazyCommand(images, 'imagesCommand') },
    { name: 'rm', args: '<name:tag>', describe: 'Remove an image; blobs other images use stay', options: [{ name: 'force', kind: 'flag', help: 'Remove it even while daemons serve it or kept clones are bound to it' }], run: lazyCommand(images, 'rmCommand') },
    {
      name: 'serve',
      args: '[image]...',
      describe: 'Export images (name:tag or registry refs, pulled lazily) over NBD (unix socket by default); clones and more images are added at run time over the control socket',
      options: [
        ...registryOptions,
        ...supernodeOptions,
        upper,
        { name: 'read-only', kind: 'flag', help: 'Refuse writes' },
        { name: 'socket', kind: text, help: 'Unix socket path (default $XDG_RUNTIME_DIR/lazybd/<export>.sock)' },
        { name: 'listen', kind: hostPort, help: 'TCP HOST:PORT instead of a unix socket (host defaults to 127.0.0.1)' },
        { name: 'export', kind: text, help: 'Export name (default: the image ref)' },
        { name: 'tls-cert', kind: text, help: 'PEM certificate: enables STARTTLS (nbds://)' },
        { name: 'tls-key', kind: text, help: 'PEM private key for --tls-cert' },
        { name: 'metrics', kind: hostPort, help: 'Serve Prometheus metrics at HOST:PORT/metrics' },
        // Modest by default: prefetch must never crowd out on-demand reads or a shared uplink.
        { name: 'prefetch-rate', kind: rate, help: 'Background completion of lazily pulled images, MB/s (0: off)', default: 16 },
        { name: 'record-trace', kind: text, help: 'Write the order of first chunk reads to FILE on exit' },
        cacheDir,
        { name: 'cache-size', kind: gib, help: 'Chunk cache limit, GiB', default: 10 },
        { name: 'decoded-cache-mib', kind: mib, help: 'Memory for decompressed chunks of compressed layers, MiB (by default 1/16 of RAM, at most 1024)', default: DEFAULT_DECODED_CACHE_MIB },
        { name: 'io-timeout', kind: seconds, help: 'Seconds before a read no source can serve fails with EIO', default: 30 },
        { name: 'p2p', kind: 'flag', help: 'Fetch chunks from and serve them to neighbours (on with --p2p-bootstrap; --no-p2p: off)' },
        { name: 'p2p-bootstrap', kind: text, help: 'DHT bootstrap nodes HOST:PORT,... (the public DHT is never used)' },
        { name: 'p2p-host', kind: text, help: 'Address the P2P node binds to (default 127.0.0.1)' },
        { name: 'p2p-upload-rate', kind: rate, help: 'Uploads to neighbours, MB/s in all (0: unlimited)', default: 32 },
        { name: 'p2p-max-uploads', kind: count, help: 'Neighbours served at once (the others are choked)', default: 8 },
        { name: 'control', kind: text, help: 'Control socket (owner-only) for clone, exports, status (default $XDG_RUNTIME_DIR/lazybd/control/<pid>.sock)' },
        { name: 'state-dir', kind: text, help: 'Where clones and added exports are kept across restarts (default <store>/daemon)' },
      ],
      run: lazyCommand(daemons, 'serveCommand'),
    },
    { name: 'commit', args: '<upper-dir> <new-name:tag>', describe: 'Turn an upper into a new top layer over its base image', options: [compressOption], run: lazyCommand(daemons, 'commitCommand') },
    { name: 'push', args: '<name:tag> <registry-ref>', describe: 'Push a local image to an OCI registry (skips blobs it has)', options: registryOptions, run: lazyCommand(registries, 'pushCommand') },
    {
      name: 'pull',
      args: '<registry-ref> [name:tag]',
      describe: 'Pull manifest and layer indexes only (kilobytes); data comes on demand',
      options: [...registryOptions, ...supernodeOptions, { name: 'full', kind: 'flag', help: 'Also download every layer blob' }],
      run: lazyCommand(registries, 'pullCommand'),
    },
    {
      name: 'mount',
      args: '<name:tag> <mountpoint>',
      describe: 'Serve an image in the background and mount its filesystem (read-only without --upper)',
      options: [
        upper,
        { name: 'read-only', kind: 'flag', help: 'Mount read-only even with an upper' },
        { name: 'fstype', kind: text, help: 'Filesystem type for mount -t (default: probed)' },
      ],
      run: lazyCommand(mounts, 'mountCommand'),
    },
    { name: 'umount', args: '<mountpoint>', describe: 'Unmount and stop what lazybd mount started', options: [], run: lazyCommand(mounts, 'umountCommand') },
    { name: 'status', args: '', describe: 'Running daemons: exports, clients, bytes local vs total, sources, prefetch', options: [daemonSocket], run: lazyCommand(controls, 'statusCommand') },
    {
      name: 'clone',
      args: '<image> <name>',
      describe: 'Add a writable clone of an image (name:tag or registry ref) to a running daemon: export NAME with a fresh upper, kept across restarts',
      options: [daemonSocket],
      run: lazyCommand(controls, 'cloneCommand'),
    },
    { name: 'clones', args: '', describe: "A running daemon's clones", options: [daemonSocket], run: lazyCommand(controls, 'clonesCommand') },
    {
      name: 'clone rm',
      args: '<name>',
      describe: 'Remove a clone and delete its upper (refused while NBD clients are connected)',
      options: [daemonSocket, { name: 'force', kind: 'flag', help: 'Drop connected clients' }, { name: 'keep', kind: 'flag', help: "Keep the clone's upper (moved to <state-dir>/kept/)" }],
      run: lazyCommand(controls, 'cloneRmCommand'),
    },
    {
      name: 'clone commit',
      args: '<name> <new-name:tag>',
      describe: "Turn a clone's upper into a new image over its base (refused while clients are connected); the clone stays",
      options: [daemonSocket, compressOption],
      run: lazyCommand(controls, 'cloneCommitCommand'),
    },
    { name: 'exports', args: '', describe: "A running daemon's exports (images and clones)", options: [daemonSocket], run: lazyCommand(controls, 'exportsCommand') },
    {
      name: 'exports add',
      args: '<image>',
      describe: 'Serve another image (read-only) from a running daemon, kept across restarts',
      options: [daemonSocket, { name: 'name', kind: text, help: 'Export name (default: the image ref)' }],
      run: lazyCommand(controls, 'exportsAddCommand'),
    },
    {
      name: 'exports rm',
      args: '<name>',
      describe: 'Stop serving an image export (refused while clients are connected)',
      options: [daemonSocket, { name: 'force', kind: 'flag', help: 'Drop connected clients' }],
      run: lazyCommand(controls, 'exportsRmCommand'),
    },
    {
      name: 'trace attach',
      args: '<name:tag> <trace-file>',
      describe: 'Store a recorded start-up trace with an image (serve prefetches it first)',
      options: [],
      run: lazyCommand(statuses, 'traceAttachCommand'),
    },
    {
      name: 'cache gc',
      args: '',
      describe: 'Remove cached chunks no stored image uses and corrupt ones; trim to --max-size',
      options: [cacheDir, { name: 'max-size', kind: gib, help: 'Trim the cache to this many GiB' }],
      run: lazyCommand(statuses, 'cacheGcCommand'),
    },
    {
      name: 'p2p-bootstrap',
      args: '',
      describe: 'Run the DHT of a closed P2P network (a bootstrap node and two persistent nodes) for serve --p2p-bootstrap',
      options: [{ name: 'listen', kind: hostPort, help: 'IPv4 HOST:PORT of the bootstrap node (port 0: any free one)', default: hostPort.parse('127.0.0.1:49737') }],
      daemon: true,
      run: lazyCommand(p2p, 'p2pBootstrapCommand'),
    },
    {
      name: 'supernode',
      args: '',
      daemon: true,
      describe: 'Run a datacenter supernode: a verified, chunk-aware pull-through cache of registries, with preheat',
      options: [
        ...registryOptions,
        { name: 'upstream', kind: registryHost, repeatable: true, required: true, help: 'Registry HOST[:PORT] to front (repeat for several; nodes pick one with ?ns=)' },
        { name: 'listen', kind: hostPort, help: 'HOST:PORT to listen on', default: hostPort.parse('127.0.0.1:5100') },
        { name: 'token-file', kind: text, required: true, help: 'File of accepted bearer tokens, one per line (mode 600)' },
        { name: 'cache-dir', kind: text, help: 'Cache directory (default <store>/supernode)' },
        { name: 'max-size', kind: gib, help: 'Cache limit, GiB', default: 100 },
        { name: 'refetch-window', kind: seconds, help: 'Seconds a fetched chunk is kept even past --max-size, so it is fetched at most once per window (default: until evicted)' },
        { name: 'manifest-ttl', kind: secondsOrZero, help: 'Seconds a tag is served from the cache before the registry is asked again (0: always ask)', default: 30 },
        { name: 'tls-cert', kind: text, help: 'PEM certificate: serve https' },
        { name: 'tls-key', kind: text, help: 'PEM private key for --tls-cert' },
        { name: 'dht-listen', kind: hostPort, help: "Also run the datacenter's P2P DHT bootstrap (as lazybd p2p-bootstrap) at this IPv4 HOST:PORT" },
      ],
      run: lazyCommand(supernodes, 'supernodeCommand'),
    },
    {
      name: 'preheat',
      args: '<registry-ref>',
      describe: 'Fill the supernodes with every chunk of an image (its trace first) ahead of a rollout',
      options: [
        { ...supernodeOptions[0]!, required: true },
        supernodeOptions[1]!,
        { name: 'timeout', kind: seconds, help: 'Seconds the preheat may take before it fails', default: 3600 },
        { name: 'concurrency', kind: count, help: 'Range requests in flight per supernode', default: 4 },
      ],
      run: lazyCommand(supernodes, 'preheatCommand'),
    },
  ],
};
