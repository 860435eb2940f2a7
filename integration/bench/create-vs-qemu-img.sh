#!/usr/bin/env bash
# Benchmark (not a test): `lazybd create` vs `qemu-img convert -O qcow2` on the same
# 2 GiB sparse raw input (about 480 MiB of data in scattered runs, like a VM disk).
# Usage: npm run build && bash integration/bench/create-vs-qemu-img.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
raw=$work/disk.raw
truncate -s 2G "$raw"
# 480 runs of 1 MiB of random data spread over the disk.
for i in $(seq 0 479); do
  dd if=/dev/urandom of="$raw" bs=1M count=1 seek=$(( (i * 4271) % 2040 )) conv=notrunc status=none
done
sync
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "input: 2 GiB sparse, $(du -m "$raw" | cut -f1) MiB allocated"
cat "$raw" > /dev/null   # same warm page cache for both
t() { local s=$(date +%s.%N); "$@" > /dev/null; echo "$(date +%s.%N) - $s" | bc; }
q=$(t qemu-img convert -O qcow2 "$raw" "$work/disk.qcow2")
l=$(t env LAZYBD_STORE="$work/store" node dist/bin/lazybd.js create "$raw" bench:v1 --json)
echo "qemu-img convert -O qcow2: ${q}s ($(du -m "$work/disk.qcow2" | cut -f1) MiB)"
echo "lazybd create:             ${l}s ($(du -sm "$work/store" | cut -f1) MiB store)"
echo "ratio lazybd/qemu-img: $(echo "scale=2; $l / $q" | bc)"
