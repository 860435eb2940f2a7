#!/usr/bin/env bash
# Installs what lazybd's tests drive and what builds its native addon, from Debian's packages
# (run as root on Debian 12).
set -euo pipefail
bash "$(dirname "${BASH_SOURCE[0]}")/check-node.sh"
packages=(
  libnbd-bin python3-libnbd   # nbdinfo nbdcopy nbdfuse nbdsh
  qemu-utils                  # qemu-img qemu-io qemu-nbd
  nbdkit fio fuse3 e2fsprogs
  docker-registry skopeo apache2-utils openssl
  iproute2 curl               # ip, tc, curl: the datacenter harness (integration/scale)
  qemu-system-x86 debootstrap # booting VMs from lazybd (integration/vm): TCG guests, the boot image
  systemd vagrant             # systemd-analyze verify/security of deploy/systemd, vagrant validate of vagrant/
)
missing=()
for p in "${packages[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p"); done
# node-gyp builds the native addon (native/) at `npm ci` with these; any working one will do (a
# python3 from pyenv, say), so only a missing command brings its package.
for tool in g++:g++ make:make python3:python3; do command -v "${tool%%:*}" >/dev/null || missing+=("${tool#*:}"); done
if ((${#missing[@]})); then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
