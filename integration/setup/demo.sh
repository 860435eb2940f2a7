#!/usr/bin/env bash
# The main job on the embedded default (a local OCI-layout store, no registry):
# build a sample ext4 disk image, turn it into a lazybd image, inspect, verify and
# export it (byte-identical to the source), then serve it over NBD with a writable
# upper until Ctrl-C (set LAZYBD_DEMO_NO_SERVE=1 to stop after the export).
set -euo pipefail
cd "$(dirname "$0")/../.."
work=${LAZYBD_DEMO_DIR:-$(mktemp -d)}
export LAZYBD_STORE=${LAZYBD_STORE:-$work/store}
lazybd() { node dist/bin/lazybd.js "$@"; }

mkdir -p "$work/rootfs/etc" "$work/rootfs/data"
cp -r /usr/share/common-licenses "$work/rootfs/data/" 2>/dev/null || true
echo "hello from lazybd" > "$work/rootfs/etc/motd"
head -c 8M /dev/urandom > "$work/rootfs/data/random.bin"
rm -f "$work/disk.raw"
mke2fs -q -t ext4 -d "$work/rootfs" "$work/disk.raw" 256M

lazybd create "$work/disk.raw" demo:latest
lazybd inspect demo:latest
lazybd verify demo:latest
lazybd export demo:latest "$work/export.raw"
cmp "$work/disk.raw" "$work/export.raw" && echo "export is byte-identical to the source ($work/export.raw)"
echo "store: $LAZYBD_STORE"
[ -n "${LAZYBD_DEMO_NO_SERVE:-}" ] && exit 0
echo "serving; in another shell try: nbdinfo --map URI, qemu-img info URI, or lazybd mount demo:latest /mnt"
echo "after Ctrl-C: LAZYBD_STORE=$LAZYBD_STORE node dist/bin/lazybd.js commit $work/upper demo:v2"
exec node dist/bin/lazybd.js serve demo:latest --upper "$work/upper" --socket "$work/nbd.sock"
