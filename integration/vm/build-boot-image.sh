#!/usr/bin/env bash
# Builds the boot image the VM tests and the VM fleet harness boot: a minimal Debian with the
# cloud kernel, one unit that prints a marker on ttyS0 and powers off, as an ext4 raw disk plus
# the image's own kernel and initrd for direct kernel boot. Called by boot-image.ts; usable by
# hand (as root):
#   bash integration/vm/build-boot-image.sh OUT_DIR [MIRROR [SUITE [DISK_MIB]]]
# OUT_DIR appears whole (built in OUT_DIR.tmp-PID, then renamed) or not at all; two builds of one
# OUT_DIR at once build it once (the second waits on OUT_DIR.lock, then finds it built).
set -euo pipefail
out=${1:?usage: build-boot-image.sh OUT_DIR [MIRROR [SUITE [DISK_MIB]]]}
mirror=${2:-http://deb.debian.org/debian}
suite=${3:-bookworm}
disk_mib=${4:-2048}
# The marker the guest prints; boot-image.ts and qemu-vm.ts parse its line.
marker=LAZYBD-BOOT-MARKER

[[ $(id -u) == 0 ]] || { echo "build-boot-image.sh: needs root (debootstrap, chroot)" >&2; exit 2; }
for tool in debootstrap mkfs.ext4 chroot flock; do
  command -v "$tool" >/dev/null || { echo "build-boot-image.sh: $tool missing (bash integration/setup/install-deps.sh)" >&2; exit 2; }
done

mkdir -p "$(dirname "$out")"
exec 9>"$out.lock"
flock 9
# Prints one word on stdout: "cached" (another build made it) or "built".
[[ -e $out ]] && { echo cached; exit 0; }

# debootstrap mounts proc and sys in the target while it works; a killed build leaves them.
remove_build() {
  for m in "$1/root/proc" "$1/root/sys" "$1/root/dev/pts"; do mountpoint -q "$m" 2>/dev/null && umount -l "$m"; done
  rm -rf "$1"
}
# Holding the lock, any other build of $out is a dead one.
for stale in "$out".tmp-*; do [[ -e $stale ]] && remove_build "$stale"; done
tmp=$out.tmp-$$
root=$tmp/root
trap 'remove_build "$tmp"' EXIT
mkdir -p "$tmp"
start=$(date +%s.%N)

debootstrap --variant=minbase --include=linux-image-cloud-amd64,systemd-sysv,udev "$suite" "$root" "$mirror" >"$tmp/debootstrap.log" 2>&1 \
  || { tail -n 30 "$tmp/debootstrap.log" >&2; exit 1; }
debootstrapped=$(date +%s.%N)

echo lazybd-vm >"$root/etc/hostname"
printf '/dev/vda / ext4 rw,errors=remount-ro 0 1\n' >"$root/etc/fstab"
# Root without a password is never needed: the guest only prints its marker and powers off.
cat >"$root/usr/local/sbin/lazybd-boot-marker" <<SCRIPT
#!/bin/sh
# Runs once per boot: lazybd.write=WORD on the kernel command line stores WORD in the guest's
# disk (so tests can see a clone's writes survive and stay its own); then the marker line with
# what the disk holds, then power off.
note=/var/lib/lazybd-boot/note
count=/var/lib/lazybd-boot/boots
mkdir -p /var/lib/lazybd-boot
for arg in \$(cat /proc/cmdline); do
  case "\$arg" in lazybd.write=*) echo "\${arg#lazybd.write=}" >"\$note" ;; esac
done
boots=\$(( \$(cat "\$count" 2>/dev/null || echo 0) + 1 ))
echo "\$boots" >"\$count"
sync
echo "$marker boots=\$boots note=\$(cat "\$note" 2>/dev/null || echo -) uptime=\$(cut -d' ' -f1 /proc/uptime)" >/dev/ttyS0
SCRIPT
chmod 755 "$root/usr/local/sbin/lazybd-boot-marker"
cat >"$root/etc/systemd/system/lazybd-boot-marker.service" <<UNIT
[Unit]
Description=Print the lazybd boot marker on ttyS0 and power off
After=multi-user.target
[Service]
Type=oneshot
ExecStart=/usr/local/sbin/lazybd-boot-marker
ExecStartPost=/usr/bin/systemctl --no-block poweroff
[Install]
WantedBy=multi-user.target
UNIT
chroot "$root" systemctl enable lazybd-boot-marker.service >/dev/null 2>&1
# No login prompts (the console is only for the marker and the kernel's messages), and no
# e2scrub_reap: under TCG its LVM probe alone takes ~14 s of a ~30 s boot, for snapshots that
# never exist here.
chroot "$root" systemctl mask getty@tty1.service serial-getty@ttyS0.service getty-static.service e2scrub_reap.service >/dev/null 2>&1

kernel=$(ls "$root"/boot/vmlinuz-* | sort -V | tail -n 1)
version=${kernel##*/vmlinuz-}
initrd=$root/boot/initrd.img-$version
# virtio_blk: built in, or a module the initrd holds; without it root=/dev/vda never appears.
virtio=$(grep -E '^CONFIG_VIRTIO_BLK=' "$root/boot/config-$version" | cut -d= -f2)
if [[ $virtio == m ]]; then
  # (listed first: grep -q would end the pipe early, and pipefail would call that a failure)
  chroot "$root" lsinitramfs "/boot/initrd.img-$version" >"$tmp/initrd.list"
  grep -q '/virtio_blk\.ko' "$tmp/initrd.list" || { echo "build-boot-image.sh: the initrd of $version lacks virtio_blk" >&2; exit 1; }
  rm "$tmp/initrd.list"
elif [[ $virtio != y ]]; then
  echo "build-boot-image.sh: kernel $version has no virtio_blk (CONFIG_VIRTIO_BLK=$virtio)" >&2; exit 1
fi
cp "$kernel" "$tmp/vmlinuz"
cp "$initrd" "$tmp/initrd.img"
packages=$(chroot "$root" dpkg-query -W -f='${Package}=${Version}\n' | sort | sha256sum | cut -c1-16)
package_count=$(chroot "$root" dpkg-query -W -f='.\n' | wc -l)

# What the guest never reads: downloaded packages and package lists.
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/var/log/*.log
truncate -s "${disk_mib}M" "$tmp/disk.raw"
mkfs.ext4 -q -F -L lazybd-root -d "$root" "$tmp/disk.raw"
data_bytes=$(( $(du -B1 "$tmp/disk.raw" | cut -f1) ))
rm -rf "$root"
done_at=$(date +%s.%N)

cat >"$tmp/build.json" <<JSON
{"suite":"$suite","mirror":"$mirror","kernelVersion":"$version","virtioBlk":"$virtio","packages":$package_count,"packageSetSha":"$packages",
 "diskBytes":$(( disk_mib * 1048576 )),"allocatedBytes":$data_bytes,"marker":"$marker",
 "debootstrapSeconds":$(awk "BEGIN{print $debootstrapped - $start}"),"buildSeconds":$(awk "BEGIN{print $done_at - $start}"),"builtAt":"$(date -u +%FT%TZ)"}
JSON
mv "$tmp/debootstrap.log" "$tmp/build.log"
mv -T "$tmp" "$out"
trap - EXIT
echo built
