#!/usr/bin/env bash
# Installs a built lazybd (npm ci && npm run build, in this checkout) on a host:
#   PREFIX (/opt/lazybd)          package.json, dist/ (no tests), production node_modules, the native addon
#   /usr/bin/lazybd               a wrapper running PREFIX's CLI on the Node.js named by --node
#   /etc/systemd/system/          lazybd.service, lazybd-supernode.service (not enabled: see deploy/provision/)
#   /etc/lazybd/                  lazybd.env.example, supernode.env.example (existing files are kept)
#   /usr/lib/sysusers.d/          lazybd.conf: the lazybd account, created with systemd-sysusers
#
# Usage: deploy/install.sh [--root DIR] [--prefix DIR] [--node PATH]
#   --root DIR    install into DIR as if it were / (default /). Nothing outside DIR is touched:
#                 no account is made on this machine (only in DIR/etc/passwd), systemd is not told.
#   --prefix DIR  the package's directory inside the root (default /opt/lazybd)
#   --node PATH   the node (>= 20) the wrapper runs (default: the one on PATH, resolved)
# Installing again replaces the package in one rename; restart the services afterwards.
set -euo pipefail

say() { printf 'lazybd install: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

root=/
prefix=/opt/lazybd
node=
while (($#)); do
  case $1 in
    --root) root=${2:?--root needs a directory}; shift 2 ;;
    --root=*) root=${1#*=}; shift ;;
    --prefix) prefix=${2:?--prefix needs a directory}; shift 2 ;;
    --prefix=*) prefix=${1#*=}; shift ;;
    --node) node=${2:?--node needs a path}; shift 2 ;;
    --node=*) node=${1#*=}; shift ;;
    -h | --help) sed -n '2,16s/^# \{0,1\}//p' "$0"; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done
[[ $prefix == /* && $prefix != / ]] || die "--prefix must be an absolute directory other than /, not $prefix"
[[ $root == /* ]] || root=$(pwd)/$root
root=${root%/}
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
[[ -f $src/dist/bin/lazybd.js && -d $src/node_modules ]] || die "$src is not built: run npm ci && npm run build there first"

node=${node:-$(command -v node || true)}
[[ -n $node ]] || die "no node on PATH; name one with --node (Node.js >= 20, see README \"Prerequisites\")"
node=$(readlink -f "$node")
"$node" -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' ||
  die "$node is Node.js $("$node" --version), lazybd needs >= 20 (see README \"Prerequisites\")"

dest=$root$prefix
stage=$dest.new.$$
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage"

# The package: compiled code without tests and source maps (their sources are not installed).
cp "$src/package.json" "$src/package-lock.json" "$src/README.md" "$stage/"
tar -C "$src" --exclude='*.test.js' --exclude='*.map' -cf - dist/bin dist/lib dist/deploy | tar -C "$stage" -xf -
# Production dependencies only: the lockfile marks what only development needs ("dev": true).
"$node" -e '
  const lock = require(process.argv[1]);
  for (const [path, p] of Object.entries(lock.packages ?? {}))
    if (path.startsWith("node_modules/") && !p.dev && !p.link) console.log(path);
' "$src/package-lock.json" | while read -r dep; do
  [[ -e $src/$dep ]] || continue # optional packages of other platforms are not installed
  mkdir -p "$stage/$(dirname "$dep")"
  [[ -e $stage/$dep ]] || cp -a "$src/$dep" "$stage/$dep"
done
if [[ -f $src/native/build/Release/lazybd_io.node ]]; then
  mkdir -p "$stage/native/build/Release"
  cp "$src/native/build/Release/lazybd_io.node" "$stage/native/build/Release/"
fi
chmod -R u=rwX,go=rX "$stage"

# Swap in the new package; the old one goes once nothing needs it.
if [[ -e $dest ]]; then
  mv "$dest" "$dest.old.$$"
  mv "$stage" "$dest"
  rm -rf "$dest.old.$$"
else
  mkdir -p "$(dirname "$dest")"
  mv "$stage" "$dest"
fi

# The wrapper finds the package relative to itself, so an install in a root (an image being
# built, a test's temp dir) runs from there too.
mkdir -p "$root/usr/bin"
rel=$(realpath -m --relative-to=/usr/bin "$prefix")
cat > "$root/usr/bin/lazybd.new.$$" <<EOF
#!/bin/sh
# lazybd, installed by deploy/install.sh: the CLI in $prefix on $("$node" --version) ($node).
here=\$(dirname "\$(readlink -f "\$0")")
exec "$node" "\$here/$rel/dist/bin/lazybd.js" "\$@"
EOF
chmod 755 "$root/usr/bin/lazybd.new.$$"
mv "$root/usr/bin/lazybd.new.$$" "$root/usr/bin/lazybd"

mkdir -p "$root/etc/systemd/system" "$root/usr/lib/sysusers.d"
install -m 644 "$src/deploy/sysusers/lazybd.conf" "$root/usr/lib/sysusers.d/lazybd.conf"
for unit in lazybd.service lazybd-supernode.service; do
  sed "s|file:/opt/lazybd/|file:$prefix/|" "$src/deploy/systemd/$unit" > "$root/etc/systemd/system/$unit.new.$$"
  chmod 644 "$root/etc/systemd/system/$unit.new.$$"
  mv "$root/etc/systemd/system/$unit.new.$$" "$root/etc/systemd/system/$unit"
done
install -d -m 755 "$root/etc/lazybd"
for example in lazybd.env.example supernode.env.example; do
  install -m 644 "$src/deploy/env/$example" "$root/etc/lazybd/$example"
done

# The account (lazybd:lazybd, home /var/lib/lazybd).
if command -v systemd-sysusers >/dev/null; then
  if [[ $root == "" ]]; then systemd-sysusers lazybd.conf; else systemd-sysusers --root="$root" lazybd.conf; fi
elif [[ $root == "" ]]; then
  getent passwd lazybd >/dev/null || useradd --system --user-group --home-dir /var/lib/lazybd --no-create-home --shell /usr/sbin/nologin lazybd
else
  say "no systemd-sysusers: no lazybd account in $root/etc/passwd"
fi
if [[ $root == "" && -d /run/systemd/system ]]; then systemctl daemon-reload; fi
say "installed $prefix ($("$root/usr/bin/lazybd" --version | head -1)) into ${root:-/}"
