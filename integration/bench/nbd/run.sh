#!/usr/bin/env bash
# NBD server benchmark: the same fio jobs (nbd ioengine, unix socket) against
# lazybd's server, `nbdkit file` and `qemu-nbd`, all exporting one raw file.
# Jobs run back to back per server (lazybd, nbdkit, qemu-nbd) so load drift
# hits all three alike; each run also reports the server's CPU time per I/O
# (user+sys from /proc), which is far less sensitive to a busy machine than IOPS.
# "lazybd-mem" serves the same image from RAM: the NBD server's own cost.
# Usage: integration/bench/nbd/run.sh [seconds-per-job] [rounds]   (build with `npx tsc -p .` first)
set -euo pipefail
cd "$(dirname "$0")/../../.."
RUNTIME=${1:-10}
ROUNDS=${2:-1}
DIR=$(mktemp -d "${TMPDIR:-/tmp}/lazybd-nbd-bench.XXXXXX")
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$DIR"; }
trap cleanup EXIT

IMG=$DIR/disk.raw
dd if=/dev/urandom of="$IMG" bs=1M count=256 status=none
cat "$IMG" >/dev/null # warm the page cache

echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), node $(node --version), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "export: 256 MiB raw file (page cache warm); fio ${RUNTIME}s per job, nbd ioengine over a unix socket; best of $ROUNDS round(s)"

wait_socket() { for _ in $(seq 200); do [ -S "$1" ] && return 0; sleep 0.05; done; echo "no socket $1" >&2; exit 1; }

declare -A SOCK PID
SERVERS=(lazybd lazybd-mem nbdkit qemu-nbd)
SOCK[lazybd]=$DIR/lazybd.sock
node dist/integration/bench/nbd/serve-raw.js "$IMG" "${SOCK[lazybd]}" "" >/dev/null &
PID[lazybd]=$!
SOCK[lazybd-mem]=$DIR/lazybd-mem.sock
node dist/integration/bench/nbd/serve-raw.js "$IMG" "${SOCK[lazybd-mem]}" "" --memory >/dev/null &
PID[lazybd-mem]=$!
SOCK[nbdkit]=$DIR/nbdkit.sock
nbdkit --foreground --unix "${SOCK[nbdkit]}" file "$IMG" &
PID[nbdkit]=$!
SOCK[qemu-nbd]=$DIR/qemu.sock
qemu-nbd --persistent --shared=8 --format=raw --cache=writeback --aio=threads --socket="${SOCK[qemu-nbd]}" "$IMG" &
PID[qemu-nbd]=$!
PIDS+=("${PID[@]}")
for s in "${SERVERS[@]}"; do wait_socket "${SOCK[$s]}"; done

JOBS=(randread-4k-qd1 randread-4k-qd32 seqread-1m-qd8 randwrite-4k-qd32)
job_args() {
  case $1 in
    randread-4k-qd1) echo "--rw=randread --bs=4k --iodepth=1" ;;
    randread-4k-qd32) echo "--rw=randread --bs=4k --iodepth=32" ;;
    seqread-1m-qd8) echo "--rw=read --bs=1M --iodepth=8" ;;
    randwrite-4k-qd32) echo "--rw=randwrite --bs=4k --iodepth=32" ;;
  esac
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
TICK_US=$((1000000 / $(getconf CLK_TCK)))

declare -A RESULT # server,job -> "iops MiB/s cpu-us-per-io"
run_fio() { # server job
  local before after out
  before=$(cpu_ticks "${PID[$1]}")
  out=$(fio --name="$2" --ioengine=nbd --uri="nbd+unix:///?socket=${SOCK[$1]}" $(job_args "$2") \
    --size=256M --runtime="$RUNTIME" --time_based --output-format=json)
  after=$(cpu_ticks "${PID[$1]}")
  RESULT[$1,$2]=$(CPU_US=$(((after - before) * TICK_US)) PREV="${RESULT[$1,$2]:-}" node -e '
    const text = require("fs").readFileSync(0, "utf8"); // fio prints a banner before the JSON
    const j = JSON.parse(text.slice(text.indexOf("{"))).jobs[0];
    const r = j.read.io_bytes > 0 ? j.read : j.write;
    const now = [r.iops, r.bw_bytes / 1048576, Number(process.env.CPU_US) / r.total_ios];
    const prev = process.env.PREV ? process.env.PREV.split(" ").map(Number) : null;
    const best = prev && prev[0] > now[0] ? prev : now;
    console.log(best.map((v) => v.toFixed(1)).join(" "));' <<<"$out")
}

for _ in $(seq "$ROUNDS"); do
  for job in "${JOBS[@]}"; do
    for s in "${SERVERS[@]}"; do run_fio "$s" "$job"; done
  done
done

printf '\n%-18s %-24s %-24s %-24s %-24s %9s %9s %9s\n' job "lazybd (cpu/io)" "lazybd-mem (cpu/io)" "nbdkit file (cpu/io)" "qemu-nbd (cpu/io)" vs-nbdkit vs-qemu mem-vs-nbdkit
for job in "${JOBS[@]}"; do
  line=$(printf '%-18s' "$job")
  declare -A v
  for s in "${SERVERS[@]}"; do
    read -r iops mib cpu <<<"${RESULT[$s,$job]}"
    if [[ $job == seq* ]]; then v[$s]=$mib; cell="$mib MiB/s"; else v[$s]=$iops; cell="${iops%.*} IOPS"; fi
    line+=$(printf ' %-24s' "$cell (${cpu%.*} us)")
  done
  line+=$(printf ' %8.2fx %8.2fx %8.2fx' "$(bc -l <<<"${v[lazybd]}/${v[nbdkit]}")" "$(bc -l <<<"${v[lazybd]}/${v[qemu-nbd]}")" \
    "$(bc -l <<<"${v[lazybd-mem]}/${v[nbdkit]}")")
  echo "$line"
done
