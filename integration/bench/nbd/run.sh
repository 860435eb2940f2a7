#!/usr/bin/env bash
# NBD server benchmark: the same fio jobs (nbd ioengine, unix socket) against
# lazybd's server, `nbdkit file` and `qemu-nbd`, all exporting one raw file.
# Usage: integration/bench/nbd/run.sh [seconds-per-job]   (run `npx tsc -p .` first)
set -euo pipefail
cd "$(dirname "$0")/../../.."
RUNTIME=${1:-10}
DIR=$(mktemp -d "${TMPDIR:-/tmp}/lazybd-nbd-bench.XXXXXX")
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$DIR"; }
trap cleanup EXIT

IMG=$DIR/disk.raw
dd if=/dev/urandom of="$IMG" bs=1M count=256 status=none
cat "$IMG" > /dev/null  # warm the page cache

echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), node $(node --version)"
echo "export: 256 MiB raw file; fio ${RUNTIME}s per job, nbd ioengine over a unix socket"

wait_socket() { for _ in $(seq 100); do [ -S "$1" ] && return 0; sleep 0.05; done; echo "no socket $1" >&2; exit 1; }

# job name -> fio arguments
JOBS=("randread-4k-qd1" "randread-4k-qd32" "seqread-1m-qd8" "randwrite-4k-qd32")
job_args() {
  case $1 in
    randread-4k-qd1) echo "--rw=randread --bs=4k --iodepth=1" ;;
    randread-4k-qd32) echo "--rw=randread --bs=4k --iodepth=32" ;;
    seqread-1m-qd8) echo "--rw=read --bs=1M --iodepth=8" ;;
    randwrite-4k-qd32) echo "--rw=randwrite --bs=4k --iodepth=32" ;;
  esac
}
declare -A RESULT
run_fio() { # server job socket
  local out
  out=$(fio --name="$2" --ioengine=nbd --uri="nbd+unix:///?socket=$3" $(job_args "$2") \
    --size=256M --runtime="$RUNTIME" --time_based --output-format=json)
  RESULT[$1,$2]=$(node -e '
    const text = require("fs").readFileSync(0, "utf8");  // fio prints a banner before the JSON
    const j = JSON.parse(text.slice(text.indexOf("{"))).jobs[0];
    const r = j.read.io_bytes > 0 ? j.read : j.write;
    console.log(`${Math.round(r.iops)} ${(r.bw_bytes / 1048576).toFixed(0)}`);' <<<"$out")
}

bench_server() { # name socket
  for job in "${JOBS[@]}"; do run_fio "$1" "$job" "$2"; done
}

# lazybd (io_uring lets libuv batch file I/O instead of a thread-pool round trip per read)
SOCK=$DIR/lazybd.sock
UV_USE_IO_URING=${UV_USE_IO_URING:-0} node dist/integration/bench/nbd/serve-raw.js "$IMG" "$SOCK" "" >/dev/null &
PIDS+=($!); wait_socket "$SOCK"; bench_server lazybd "$SOCK"; kill "${PIDS[-1]}"

SOCK=$DIR/nbdkit.sock
nbdkit --foreground --unix "$SOCK" file "$IMG" &
PIDS+=($!); wait_socket "$SOCK"; bench_server nbdkit "$SOCK"; kill "${PIDS[-1]}"

SOCK=$DIR/qemu.sock
qemu-nbd --persistent --shared=8 --format=raw --cache=writeback --socket="$SOCK" "$IMG" &
PIDS+=($!); wait_socket "$SOCK"; bench_server qemu-nbd "$SOCK"; kill "${PIDS[-1]}"

printf '\n%-20s %16s %16s %16s %10s %10s\n' job lazybd nbdkit-file qemu-nbd vs-nbdkit vs-qemu
for job in "${JOBS[@]}"; do
  read -r li lb <<<"${RESULT[lazybd,$job]}"; read -r ki kb <<<"${RESULT[nbdkit,$job]}"; read -r qi qb <<<"${RESULT[qemu-nbd,$job]}"
  if [[ $job == seq* ]]; then l="$lb MiB/s"; k="$kb MiB/s"; q="$qb MiB/s"; a=$lb; b=$kb; c=$qb
  else l="$li IOPS"; k="$ki IOPS"; q="$qi IOPS"; a=$li; b=$ki; c=$qi; fi
  printf '%-20s %16s %16s %16s %9.2fx %9.2fx\n' "$job" "$l" "$k" "$q" "$(bc -l <<<"$a/$b")" "$(bc -l <<<"$a/$c")"
done
