#!/usr/bin/env bash
# Installs what lazybd's tests drive, from Debian's packages (run as root on Debian 12).
set -euo pipefail
bash "$(dirname "${BASH_SOURCE[0]}")/check-node.sh"
packages=(
  libnbd-bin python3-libnbd   # nbdinfo nbdcopy nbdfuse nbdsh
  qemu-utils                  # qemu-img qemu-io qemu-nbd
  nbdkit fio fuse3 e2fsprogs
  docker-registry skopeo apache2-utils openssl
  iproute2 curl               # ip, tc, curl: the datacenter harness (integration/scale)
)
missing=()
for p in "${packages[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p"); done
if ((${#missing[@]})); then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
