#!/usr/bin/env bash
# NBD serving benchmark: the same fio jobs (nbd ioengine, unix socket) against
#   lazybd-image  `lazybd serve` of an image made by `lazybd create` from the raw file, with an
#                 upper: reads go through upper map + merged index + layer blob, writes into the upper
#   lazybd-pure   the same with LAZYBD_NATIVE=0: no RWF_NOWAIT page-cache reads on the main thread
#   lazybd-tp1    the same with UV_THREADPOOL_SIZE=1: the cost of libuv thread-pool handoffs
#                 (futex wake-ups, a contended queue lock) per file read, which dominate at 4 threads
#   lazybd-raw    lazybd's NBD server over a RawFileDevice on the raw file
#   lazybd-mem    the same server with the image in RAM: the NBD server's own cost
#   nbdkit        `nbdkit file` on the raw file
#   qemu-nbd      qemu-nbd on the raw file
#   qemu-qcow2    qemu-nbd on a 3-deep qcow2 chain (base from the raw, two overlays with writes)
# Jobs run back to back per server so load drift hits all alike; each run also reports
# the server's CPU time per I/O (user+sys from /proc), far less sensitive to a busy
# machine than IOPS. Writes land in the upper / top qcow2, so later rounds read some of them.
# Usage: integration/bench/nbd/run.sh [seconds-per-job] [rounds]   (build with `npx tsc -p .` first)
# BENCH_SERVERS="lazybd-image nbdkit ..." runs only those (ratios need lazybd-image and nbdkit).
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

# lazybd image in a private store; the runtime dir keeps its socket/status files out of the user's.
export LAZYBD_STORE=$DIR/store XDG_RUNTIME_DIR=$DIR/run
mkdir -p "$XDG_RUNTIME_DIR"
node dist/bin/lazybd.js create "$IMG" bench:v1 --json >/dev/null

# qcow2 chain: base <- mid <- top, each overlay holding 16 MiB of its own writes.
qemu-img convert -q -f raw -O qcow2 "$IMG" "$DIR/base.qcow2"
qemu-img create -q -f qcow2 -b "$DIR/base.qcow2" -F qcow2 "$DIR/mid.qcow2"
qemu-io -f qcow2 -c 'write -P 0xa5 8M 16M' "$DIR/mid.qcow2" >/dev/null
qemu-img create -q -f qcow2 -b "$DIR/mid.qcow2" -F qcow2 "$DIR/top.qcow2"
qemu-io -f qcow2 -c 'write -P 0x5a 128M 16M' "$DIR/top.qcow2" >/dev/null
cat "$IMG" "$LAZYBD_STORE"/blobs/sha256/* "$DIR"/*.qcow2 >/dev/null 2>&1 || true # warm the page cache

echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(free -g | awk '/^Mem:/{print $2}') GiB RAM, node $(node --version), $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "servers: $(nbdkit --version), $(qemu-nbd --version | head -1), $(fio --version)"
echo "export: 256 MiB of random data (page cache warm); fio ${RUNTIME}s per job, nbd ioengine over a unix socket; best of $ROUNDS round(s)"

wait_socket() { for _ in $(seq 400); do [ -S "$1" ] && return 0; sleep 0.05; done; echo "no socket $1" >&2; exit 1; }

declare -A SOCK PID
ALL_SERVERS=(lazybd-image lazybd-pure lazybd-tp1 lazybd-raw lazybd-mem nbdkit qemu-nbd qemu-qcow2)
read -r -a SERVERS <<<"${BENCH_SERVERS:-${ALL_SERVERS[*]}}"
for s in "${SERVERS[@]}"; do SOCK[$s]=$DIR/$s.sock; done
start_server() {
  case $1 in
    lazybd-image) node dist/bin/lazybd.js serve bench:v1 --socket "${SOCK[$1]}" --upper "$DIR/upper" --export bench --prefetch-rate 0 >/dev/null & ;;
    lazybd-pure) LAZYBD_NATIVE=0 node dist/bin/lazybd.js serve bench:v1 --socket "${SOCK[$1]}" --upper "$DIR/upper-pure" --export bench --prefetch-rate 0 >/dev/null & ;;
    lazybd-tp1) UV_THREADPOOL_SIZE=1 node dist/bin/lazybd.js serve bench:v1 --socket "${SOCK[$1]}" --upper "$DIR/upper-tp1" --export bench --prefetch-rate 0 >/dev/null & ;;
    lazybd-raw) node dist/integration/bench/nbd/serve-raw.js "$IMG" "${SOCK[$1]}" "" >/dev/null & ;;
    lazybd-mem) node dist/integration/bench/nbd/serve-raw.js "$IMG" "${SOCK[$1]}" "" --memory >/dev/null & ;;
    nbdkit) nbdkit --foreground --unix "${SOCK[$1]}" file "$IMG" & ;;
    qemu-nbd) qemu-nbd --persistent --shared=8 --format=raw --cache=writeback --aio=threads --socket="${SOCK[$1]}" "$IMG" & ;;
    qemu-qcow2) qemu-nbd --persistent --shared=8 --format=qcow2 --cache=writeback --aio=threads --socket="${SOCK[$1]}" "$DIR/top.qcow2" & ;;
    *) echo "unknown server $1 (known: ${ALL_SERVERS[*]})" >&2; exit 2 ;;
  esac
  PID[$1]=$!
  PIDS+=("${PID[$1]}")
}
for s in "${SERVERS[@]}"; do start_server "$s"; done
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

echo
echo "absolute (IOPS, or MiB/s for seq), server CPU us per I/O in parentheses"
printf '%-18s' job
for s in "${SERVERS[@]}"; do printf ' %-21s' "$s"; done
echo
ratio() { bc -l <<<"$1/$2" | xargs printf '%.2f'; }
declare -A V
for job in "${JOBS[@]}"; do
  printf '%-18s' "$job"
  for s in "${SERVERS[@]}"; do
    read -r iops mib cpu <<<"${RESULT[$s,$job]}"
    if [[ $job == seq* ]]; then V[$s,$job]=$mib; cell="$mib"; else V[$s,$job]=$iops; cell="${iops%.*}"; fi
    printf ' %-21s' "$cell ($cpu)"
  done
  echo
done
echo
echo "ratios (throughput; higher is better for lazybd), of the servers that ran"
PAIRS=(lazybd-image/nbdkit lazybd-pure/nbdkit lazybd-image/lazybd-pure lazybd-image/qemu-nbd lazybd-image/qemu-qcow2 lazybd-tp1/nbdkit lazybd-raw/nbdkit lazybd-raw/qemu-nbd lazybd-mem/nbdkit)
ran() { [[ " ${SERVERS[*]} " == *" $1 "* ]]; }
printf '%-18s' job
for p in "${PAIRS[@]}"; do ran "${p%/*}" && ran "${p#*/}" && printf ' %24s' "$p"; done
echo
for job in "${JOBS[@]}"; do
  printf '%-18s' "$job"
  for p in "${PAIRS[@]}"; do ran "${p%/*}" && ran "${p#*/}" && printf ' %24s' "$(ratio "${V[${p%/*},$job]}" "${V[${p#*/},$job]}")"; done
  echo
done
