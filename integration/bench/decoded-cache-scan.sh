#!/usr/bin/env bash
# Benchmark (not a test): does a sequential scan larger than the decoded-chunk cache push out the
# chunks a workload reuses? Serves a zstd image with `--decoded-cache-mib 128`, then with fio:
#   1. 4k random reads over the first 64 MiB (the hot set, decoded once),
#   2. one 4k sequential pass over the next 256 MiB (twice the cache),
#   3. the hot set again,
# and prints the decoded-chunk misses of each phase (lazybd_decoded_chunk_misses_total) and the IOPS
# of the last. With LRU, phase 3 decoded the whole hot set again; with SIEVE, nothing.
# Usage: npx tsc -p . && bash integration/bench/decoded-cache-scan.sh [raw-image]
# Without an argument the input is 320 MiB of base64 text (compresses to ~75%, like binaries).
set -euo pipefail
cd "$(dirname "$0")/../.."
DIR=$(mktemp -d "${TMPDIR:-/tmp}/lazybd-scan-bench.XXXXXX")
SERVER=
cleanup() { [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$DIR"; }
trap cleanup EXIT
RAW=${1:-$DIR/text.raw}
[ -n "${1:-}" ] || head -c $((240 << 20)) /dev/urandom | base64 -w 4096 > "$RAW"

export LAZYBD_STORE=$DIR/store XDG_RUNTIME_DIR=$DIR
node dist/bin/lazybd.js create "$RAW" scan:zstd --compress zstd --json > /dev/null
PORT=$((20000 + RANDOM % 20000))
node dist/bin/lazybd.js serve scan:zstd --read-only --socket "$DIR/s.sock" --prefetch-rate 0 \
  --decoded-cache-mib 128 --metrics "127.0.0.1:$PORT" --json > "$DIR/serve.log" 2>&1 &
SERVER=$!
for _ in $(seq 100); do [ -S "$DIR/s.sock" ] && break; sleep 0.1; done
URI="nbd+unix:///scan:zstd?socket=$DIR/s.sock"
misses() { curl -sf "127.0.0.1:$PORT/metrics" | awk '/^lazybd_decoded_chunk_misses_total/ { print $2 }'; }
iops() { fio --name=scan --ioengine=nbd --uri="$URI" "$@" --output-format=json | sed -n '/^{/,$p' \
  | node -e 'let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => console.log(Math.round(JSON.parse(s).jobs[0].read.iops)))'; }
hot=(--rw=randread --bs=4k --iodepth=16 --offset=0 --size=64M)

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); lazybd $(git rev-parse --short HEAD)"
m0=$(misses); iops "${hot[@]}" --runtime=3 --time_based > /dev/null; m1=$(misses)
echo "1. hot set (64 MiB, random 4k, 3 s): $((m1 - m0)) decodes"
iops --rw=read --bs=4k --iodepth=4 --offset=64M --size=256M > /dev/null; m2=$(misses)
echo "2. sequential 4k pass over 256 MiB: $((m2 - m1)) decodes"
after=$(iops "${hot[@]}" --runtime=3 --time_based); m3=$(misses)
echo "3. hot set again (3 s): $((m3 - m2)) decodes, $after IOPS"
