# shellcheck shell=bash
# Sourced by registry.sh, supernode.sh and node.sh: what provisioning a lab host takes.
#
# Two modes, one set of scripts:
#   On a VM (the default; vagrant/Vagrantfile runs them as root on Debian 12): installs Debian
#     packages and Node.js >= 20, builds lazybd from the checkout and installs it
#     (deploy/install.sh), writes /etc/lazybd/*.env, then `systemctl enable` + restart.
#   LAZYBD_PROVISION_NO_SYSTEMD=1 with --root DIR (the netns harness, tests): touches nothing
#     outside DIR. Installs no packages (checks they are there), installs the already built
#     lazybd into DIR, writes the same configuration there, and where the VM would start the
#     unit prints its ExecStart as systemd would run it with every path in DIR
#     (deploy/run-unit.ts), or with --exec becomes that process, so whoever ran the script
#     (in a network namespace, say) owns the service.
#
# Settings, from the environment:
#   LAZYBD_ADDRESS           this host's address on the lab network (198.18.0.0/15); required
#   LAZYBD_REGISTRY          the registry, HOST:PORT (default 198.18.0.2:5000)
#   LAZYBD_SUPERNODE         the supernode, HOST:PORT (default 198.18.0.10:5000)
#   LAZYBD_SUPERNODE_TOKEN   the bearer token supernode and nodes share (>= 16 characters)
#   LAZYBD_P2P               1 (default): nodes fetch from each other, through the supernode's DHT
#   LAZYBD_SRC               the lazybd checkout (default: the one holding this script)
set -euo pipefail

PROVISION_ROLE=$(basename "$0" .sh)
say() { printf 'lazybd provision %s: %s\n' "$PROVISION_ROLE" "$*" >&2; }
die() { say "$*"; exit 1; }

LAZYBD_SRC=${LAZYBD_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
LAZYBD_REGISTRY=${LAZYBD_REGISTRY:-198.18.0.2:5000}
LAZYBD_SUPERNODE=${LAZYBD_SUPERNODE:-198.18.0.10:5000}
LAZYBD_P2P=${LAZYBD_P2P:-1}
LAZYBD_PREFIX=/opt/lazybd
NO_SYSTEMD=${LAZYBD_PROVISION_NO_SYSTEMD:-0}
# The DHT the supernode runs for the nodes (lazybd supernode --dht-listen, serve --p2p-bootstrap).
# shellcheck disable=SC2034 # used by supernode.sh and node.sh
DHT_PORT=49737
ROOT=
EXEC=0

provision_init() {
  local root=
  while (($#)); do
    case $1 in
      --root) root=${2:?--root needs a directory}; shift 2 ;;
      --root=*) root=${1#*=}; shift ;;
      --exec) EXEC=1; shift ;;
      *) die "unknown argument $1 (usage: $0 [--root DIR [--exec]], --root with LAZYBD_PROVISION_NO_SYSTEMD=1)" ;;
    esac
  done
  if [[ $NO_SYSTEMD == 1 ]]; then
    [[ -n $root ]] || die "LAZYBD_PROVISION_NO_SYSTEMD=1 needs --root DIR (nothing is written outside it)"
    mkdir -p "$root"
    ROOT=$(cd "$root" && pwd)
    [[ $ROOT != / ]] || die "--root / would be this machine: run without LAZYBD_PROVISION_NO_SYSTEMD instead"
  else
    [[ -z $root && $EXEC == 0 ]] || die "--root and --exec are for LAZYBD_PROVISION_NO_SYSTEMD=1; a VM is provisioned in /"
    ((EUID == 0)) || die "run as root (it installs packages and services)"
  fi
  [[ -n ${LAZYBD_ADDRESS:-} ]] || die "set LAZYBD_ADDRESS to this host's address on the lab network"
  local v
  for v in LAZYBD_ADDRESS LAZYBD_REGISTRY LAZYBD_SUPERNODE; do
    in_lab_range "${!v%:*}" || die "$v=${!v} is outside 198.18.0.0/15, the lab network's range"
  done
}

# 198.18.0.0/15 (RFC 2544, benchmarking): 198.18.x.y and 198.19.x.y.
in_lab_range() { [[ $1 =~ ^198\.1[89]\.[0-9]{1,3}\.[0-9]{1,3}$ ]]; }

need_token() {
  [[ ${#LAZYBD_SUPERNODE_TOKEN} -ge 16 && $LAZYBD_SUPERNODE_TOKEN =~ ^[^[:space:]]+$ ]] ||
    die "set LAZYBD_SUPERNODE_TOKEN (at least 16 characters, no spaces), the same on the supernode and the nodes"
}

# Debian packages: installed on a VM, only checked otherwise (the harness machine has them).
need_packages() {
  local missing=() p
  for p in "$@"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p"); done
  ((${#missing[@]})) || return 0
  [[ $NO_SYSTEMD == 0 ]] || die "missing Debian packages: ${missing[*]} (integration/setup/install-deps.sh installs them)"
  say "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

node_major() { node -e 'console.log(process.versions.node.split(".")[0])' 2>/dev/null || echo 0; }

# Node.js >= 20: Debian 12's own nodejs is 18, so a VM gets the official build unless it
# has one (or Debian's candidate is new enough, as on Debian 13).
need_node() {
  (($(node_major) >= 20)) && return 0
  [[ $NO_SYSTEMD == 0 ]] || die "no Node.js >= 20 on PATH (see README \"Prerequisites\")"
  local candidate
  apt-get update -qq
  candidate=$(apt-cache policy nodejs 2>/dev/null | sed -n 's/^ *Candidate: \([0-9]*\).*/\1/p')
  if [[ -n $candidate && $candidate -ge 20 ]]; then
    need_packages nodejs npm
    return 0
  fi
  need_packages ca-certificates curl xz-utils
  local version=${LAZYBD_NODE_VERSION:-latest-v20.x} dist arch tarball
  dist="https://nodejs.org/dist/$version"
  case $(uname -m) in x86_64) arch=x64 ;; aarch64) arch=arm64 ;; *) die "no Node.js build for $(uname -m)" ;; esac
  say "installing Node.js ($version, linux-$arch) into /usr/local"
  local tmp; tmp=$(mktemp -d)
  curl -fsSL "$dist/SHASUMS256.txt" -o "$tmp/SHASUMS256.txt"
  tarball=$(grep -o "node-v[0-9.]*-linux-$arch.tar.xz" "$tmp/SHASUMS256.txt" | head -1)
  curl -fsSL "$dist/$tarball" -o "$tmp/$tarball"
  (cd "$tmp" && grep " $tarball\$" SHASUMS256.txt | sha256sum -c --quiet -)
  tar -C /usr/local --strip-components=1 -xJf "$tmp/$tarball"
  rm -rf "$tmp"
  hash -r
  (($(node_major) >= 20)) || die "Node.js install failed"
}

# lazybd from the checkout: built here on a VM (its own Node, native addon and all); in
# no-systemd mode the checkout must already be built (npm ci && npm run build).
install_lazybd() {
  need_node
  if [[ $NO_SYSTEMD == 0 ]]; then
    need_packages g++ make python3 # the native addon (native/)
    say "building lazybd in $LAZYBD_SRC"
    (cd "$LAZYBD_SRC" && npm ci --no-audit --no-fund --loglevel=error && npm run build --silent)
  fi
  bash "$LAZYBD_SRC/deploy/install.sh" --root "${ROOT:-/}"
}

# put PATH MODE < content: writes $ROOT/PATH atomically with that mode.
put() {
  local path=$ROOT$1 mode=$2
  mkdir -p "$(dirname "$path")"
  cat > "$path.new.$$"
  chmod "$mode" "$path.new.$$"
  mv "$path.new.$$" "$path"
}

# The lazybd account owns this file (on a VM; in no-systemd mode the service runs as the caller).
own_by_service_user() {
  [[ $NO_SYSTEMD == 1 ]] || chown lazybd:lazybd "$ROOT$1"
}

# start_unit UNIT [UNIT-FILE]: enable and (re)start it; in no-systemd mode print or exec its ExecStart.
start_unit() {
  local unit=$1 file=${2:-/etc/systemd/system/$1}
  if [[ $NO_SYSTEMD == 0 ]]; then
    systemctl daemon-reload
    systemctl enable --quiet "$unit"
    systemctl restart "$unit"
    say "$unit enabled and started"
    return 0
  fi
  local run_unit=$ROOT$LAZYBD_PREFIX/dist/deploy/run-unit.js
  if [[ $EXEC == 0 ]]; then
    node "$run_unit" --root "$ROOT" --print "$file"
    return 0
  fi
  local out fields=() envs=() i=1
  out=$(mktemp)
  node "$run_unit" --root "$ROOT" --print0 "$file" > "$out" || { rm -f "$out"; die "cannot resolve $file"; }
  mapfile -d '' fields < "$out"
  rm -f "$out"
  while [[ ${fields[i]} != -- ]]; do envs+=("${fields[i]}"); ((i += 1)); done
  say "exec ${fields[*]:i+1}"
  umask "${fields[0]}"
  cd /
  exec env -i "${envs[@]}" "${fields[@]:i+1}"
}
