#!/usr/bin/env bash
# Installs what the tests and the demo need, pinned, into a git-ignored
# tools directory (default: .tools/bin). Reuses whatever is already there, so
# a second run is fast. Needs root for apt-get; everything else is `go install`
# from the Go module proxy.
#
# Environment (hack/matrix.sh uses all of it; `make tools` none):
#   TOOLS_BIN           the tools directory (default .tools/bin)
#   CONTAINERD_VERSION, RUNC_VERSION, RUNSC_VERSION
#                       other versions than the pins below; only into another
#                       directory than .tools/bin, which keeps the pins
#   TOOLS_REUSE_FROM    colon-separated tools directories: a binary of the
#                       wanted version there is copied instead of built
#   INSTALL_VM_KERNEL=0 skip make test-vm's kernel (hack/vm-kernel.sh)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
default_bin=$root/.tools/bin
bin=${TOOLS_BIN:-$default_bin}

# The pins: what `make tools`, `make test` and the README's versions mean.
DEFAULT_CONTAINERD_VERSION=v2.4.2
DEFAULT_RUNC_VERSION=v1.5.2
# gVisor publishes no semver tags on the module proxy; this pseudo-version is
# the release the project is tested with (see docs/architecture.md).
DEFAULT_RUNSC_VERSION=v0.0.0-20260905035102-160fafc42237

CONTAINERD_VERSION=${CONTAINERD_VERSION:-$DEFAULT_CONTAINERD_VERSION}
RUNC_VERSION=${RUNC_VERSION:-$DEFAULT_RUNC_VERSION}
RUNSC_VERSION=${RUNSC_VERSION:-$DEFAULT_RUNSC_VERSION}

log() { printf 'install-tools: %s\n' "$*" >&2; }

mkdir -p "$bin"
if [ "$(cd "$bin" && pwd -P)" = "$(mkdir -p "$default_bin" && cd "$default_bin" && pwd -P)" ] &&
  [ "$CONTAINERD_VERSION $RUNC_VERSION $RUNSC_VERSION" != "$DEFAULT_CONTAINERD_VERSION $DEFAULT_RUNC_VERSION $DEFAULT_RUNSC_VERSION" ]; then
  log "$bin keeps the pinned versions ($DEFAULT_CONTAINERD_VERSION, $DEFAULT_RUNC_VERSION, $DEFAULT_RUNSC_VERSION):"
  log "set TOOLS_BIN to another directory for containerd $CONTAINERD_VERSION, runc $RUNC_VERSION, runsc $RUNSC_VERSION"
  exit 1
fi

apt_pkgs=(libseccomp-dev pkg-config busybox-static iproute2 apparmor containernetworking-plugins qemu-system-x86)
missing=()
for p in "${apt_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  if [ "$(id -u)" != 0 ]; then
    log "missing Debian packages (${missing[*]}) and not root: install them first"; exit 1
  fi
  log "apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# have NAME VERSION-SUBSTRING: true when $bin/NAME exists and its recorded
# version matches, so a pin change rebuilds.
have() { [ -x "$bin/$1" ] && [ "$(cat "$bin/.$1.version" 2>/dev/null)" = "$2" ]; }
stamp() { echo "$2" >"$bin/.$1.version"; }
# reuse NAME VERSION: copy NAME of VERSION from a TOOLS_REUSE_FROM directory
# that has it (another combination of hack/matrix.sh, or .tools/bin).
reuse() {
  local d dirs
  IFS=: read -r -a dirs <<<"${TOOLS_REUSE_FROM:-}"
  for d in "${dirs[@]}"; do
    if [ -z "$d" ] || [ "$d" = "$bin" ]; then continue; fi
    if [ -x "$d/$1" ] && [ "$(cat "$d/.$1.version" 2>/dev/null)" = "$2" ]; then
      log "reusing $1 $2 from $d"
      cp -f "$d/$1" "$bin/$1.tmp" && mv -f "$bin/$1.tmp" "$bin/$1"
      stamp "$1" "$2"
      return 0
    fi
  done
  return 1
}

export GOFLAGS=-mod=mod
build_dir=$(mktemp -d)
trap 'rm -rf "$build_dir"' EXIT

for b in containerd ctr containerd-shim-runc-v2; do
  if ! have "$b" "$CONTAINERD_VERSION" && ! reuse "$b" "$CONTAINERD_VERSION"; then
    log "building $b $CONTAINERD_VERSION"
    GOBIN=$bin go install -tags "no_btrfs no_devmapper no_zfs" \
      "github.com/containerd/containerd/v2/cmd/$b@$CONTAINERD_VERSION"
    stamp "$b" "$CONTAINERD_VERSION"
  fi
done

if ! have runc "$RUNC_VERSION" && ! reuse runc "$RUNC_VERSION"; then
  log "building runc $RUNC_VERSION"
  GOBIN=$bin go install -tags seccomp "github.com/opencontainers/runc@$RUNC_VERSION"
  stamp runc "$RUNC_VERSION"
fi

if ! have runsc "$RUNSC_VERSION" && ! reuse runsc "$RUNSC_VERSION"; then
  # runsc must be static: a dynamic one cannot re-exec itself in its chroot.
  log "building runsc $RUNSC_VERSION (static)"
  CGO_ENABLED=0 GOBIN=$bin go install "gvisor.dev/gvisor/runsc@$RUNSC_VERSION"
  stamp runsc "$RUNSC_VERSION"
fi

# make test-vm: Debian's kernel under qemu (cgroup v2, AppArmor).
if [ "${INSTALL_VM_KERNEL:-1}" != 0 ]; then
  VM_DIR=${VM_DIR:-$(dirname "$bin")/vm} "$root/hack/vm-kernel.sh"
fi

log "tools ready in $bin"
