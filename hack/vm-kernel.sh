#!/usr/bin/env bash
# Fetches the kernel make test-vm boots: Debian's current linux-image-amd64
# (cgroup v2 with every controller, AppArmor built in and on by default),
# its vmlinuz and the modules the guest loads (overlayfs for containerd's
# snapshotter; veth and the bridge for CNI), into $VM_DIR/<package>/, and
# points $VM_DIR/current at it. Reuses what is there. Needs apt (root).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
vm_dir=${VM_DIR:-$root/.tools/vm}
mkdir -p "$vm_dir"

log() { printf 'vm-kernel: %s\n' "$*" >&2; }

pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
if [ -z "$pkg" ]; then
  apt-get update -qq
  pkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
fi
[ -n "$pkg" ] || { log "no linux-image-amd64 in apt's lists"; exit 1; }

if [ ! -f "$vm_dir/$pkg/vmlinuz" ]; then
  log "fetching $pkg"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  if ! (cd "$tmp" && apt-get download -q "$pkg") >"$tmp/apt.log" 2>&1; then
    cat "$tmp/apt.log" >&2
    exit 1
  fi
  deb=$(ls "$tmp"/"$pkg"_*.deb)
  dpkg-deb -x "$deb" "$tmp/x"
  mkdir -p "$vm_dir/$pkg.new/modules"
  cp "$tmp"/x/boot/vmlinuz-* "$vm_dir/$pkg.new/vmlinuz"
  for m in net/llc/llc net/802/stp net/bridge/bridge drivers/net/veth fs/overlayfs/overlay; do
    cp "$tmp"/x/lib/modules/*/kernel/$m.ko "$vm_dir/$pkg.new/modules/"
  done
  # The order the guest loads them in (dependencies first).
  printf '%s\n' llc stp bridge veth overlay >"$vm_dir/$pkg.new/modules/order"
  dpkg-deb -f "$deb" Version >"$vm_dir/$pkg.new/version"
  rm -rf "${vm_dir:?}/$pkg"
  mv "$vm_dir/$pkg.new" "$vm_dir/$pkg"
fi
ln -sfn "$pkg" "$vm_dir/current"
log "kernel $pkg ($(cat "$vm_dir/$pkg/version")) in $vm_dir/current"
