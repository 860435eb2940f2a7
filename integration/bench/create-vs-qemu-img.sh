#!/usr/bin/env bash
# Benchmark (not a test): `lazybd create` vs a durable `qemu-img convert -O qcow2 -t writeback`
# (it flushes the output before exiting, as create fsyncs its blob) on the same 2 GiB sparse raw
# input (480 MiB of data in scattered 1 MiB runs, like a VM disk). Rounds alternate the two
# tools; the best of each is compared (the machine is shared, so single runs are noisy). The ratio is
# for `--compress none` (qcow2 without -c is uncompressed too); the default codec is timed beside it
# (this input is random, so every chunk is tried and stored raw: the worst case for create).
# Usage: npm run build && bash integration/bench/create-vs-qemu-img.sh [rounds=3]
# LAZYBD_NATIVE=0 in the environment measures the pure-TypeScript path.
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-3}
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
echo "lazybd: $(node dist/bin/lazybd.js --version)"
echo "qemu-img: $(qemu-img --version | head -1)"
cat "$raw" > /dev/null   # same warm page cache for both
t() { local s=$(date +%s.%N); "$@" > /dev/null; echo "$(date +%s.%N) - $s" | bc; }
best() { printf '%s\n' "$@" | sort -n | head -1; }
qs=() ls=() zs=()
for r in $(seq 1 "$rounds"); do
  rm -rf "$work/disk.qcow2" "$work/store" "$work/store-z"
  q=$(t qemu-img convert -O qcow2 -t writeback "$raw" "$work/disk.qcow2")
  l=$(t env LAZYBD_STORE="$work/store" node dist/bin/lazybd.js create "$raw" bench:v1 --compress none --json)
  z=$(t env LAZYBD_STORE="$work/store-z" node dist/bin/lazybd.js create "$raw" bench:v1 --json)
  echo "round $r: qemu-img ${q}s, lazybd --compress none ${l}s, lazybd (default codec) ${z}s"
  qs+=("$q") ls+=("$l") zs+=("$z")
done
q=$(best "${qs[@]}") l=$(best "${ls[@]}") z=$(best "${zs[@]}")
echo "qemu-img convert -O qcow2 -t writeback: best ${q}s ($(du -m "$work/disk.qcow2" | cut -f1) MiB)"
echo "lazybd create --compress none:          best ${l}s ($(du -sm "$work/store" | cut -f1) MiB store)"
echo "lazybd create (default codec):          best ${z}s ($(du -sm "$work/store-z" | cut -f1) MiB store)"
echo "ratio lazybd --compress none / qemu-img: $(echo "scale=2; $l / $q" | bc)"
echo "ratio lazybd default codec / qemu-img:   $(echo "scale=2; $z / $q" | bc)"
