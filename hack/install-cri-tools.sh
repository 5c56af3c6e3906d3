#!/usr/bin/env bash
# Builds the CRI test tools, pinned by hack/cri-tools/go.mod, into the same
# git-ignored tools directory as hack/install-tools.sh (default .tools/bin):
#   crictl  - the CRI command line client (integration/cri drives pods with it)
#   critest - cri-tools' CRI validation suite (a compiled Ginkgo test binary)
#   busybox-dynamic - Debian's dynamically linked busybox, for the busybox
#             image integration/cri builds (see below)
# Reuses what is already there when its version stamp matches, so a second run
# is instant. Needs Go, the module proxy and apt (Debian's archive).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
bin=${TOOLS_BIN:-$root/.tools/bin}
mkdir -p "$bin"

# Keep in step with hack/cri-tools/go.mod.
CRI_TOOLS_VERSION=v1.36.0

log() { printf 'install-cri-tools: %s\n' "$*" >&2; }
have() { [ -x "$bin/$1" ] && [ "$(cat "$bin/.$1.version" 2>/dev/null)" = "$2" ]; }
stamp() { echo "$2" >"$bin/.$1.version"; }

cd "$root/hack/cri-tools"
grep -q "sigs.k8s.io/cri-tools $CRI_TOOLS_VERSION\$" go.mod || {
  log "hack/cri-tools/go.mod does not require cri-tools $CRI_TOOLS_VERSION"; exit 1
}
# The module proxy serves cri-tools v1.36.0 but the checksum database is not
# reachable from every build machine; go.sum (committed) pins the hashes.
export GOSUMDB=off GOFLAGS=-mod=readonly CGO_ENABLED=0

if ! have crictl "$CRI_TOOLS_VERSION"; then
  log "building crictl $CRI_TOOLS_VERSION"
  go build -trimpath -o "$bin/crictl" sigs.k8s.io/cri-tools/cmd/crictl
  stamp crictl "$CRI_TOOLS_VERSION"
fi

if ! have critest "$CRI_TOOLS_VERSION"; then
  log "building critest $CRI_TOOLS_VERSION"
  go test -c -trimpath -o "$bin/critest" sigs.k8s.io/cri-tools/cmd/critest
  stamp critest "$CRI_TOOLS_VERSION"
fi

# critest's MaskedPaths spec masks /bin/ls and expects `sh -c ls` to fail
# with "Permission denied". Debian's static busybox (busybox-static) is built
# with a "standalone shell" that runs its applets without exec, so masking
# /bin/ls changes nothing; Debian's dynamic busybox (package busybox) execs
# them through PATH like the e2e busybox image does. It conflicts with
# busybox-static, so it is unpacked here, not installed; integration/cri
# copies it and the libraries it links into the image.
bb_version=$(apt-cache policy busybox 2>/dev/null | sed -n 's/^ *Candidate: //p')
if [ -z "$bb_version" ] || [ "$bb_version" = "(none)" ]; then
  log "apt-get update (no candidate for Debian package busybox)"
  apt-get update -qq
  bb_version=$(apt-cache policy busybox | sed -n 's/^ *Candidate: //p')
fi
if ! have busybox-dynamic "$bb_version"; then
  log "unpacking Debian busybox $bb_version"
  work=$(mktemp -d)
  (cd "$work" && apt-get download -qq "busybox=$bb_version" 2>/dev/null) ||
    { rm -rf "$work"; log "apt-get download busybox=$bb_version failed"; exit 1; }
  dpkg-deb -x "$work"/busybox_*.deb "$work/x"
  install -m 0755 "$work/x/bin/busybox" "$bin/busybox-dynamic"
  rm -rf "$work"
  stamp busybox-dynamic "$bb_version"
fi

log "crictl, critest and busybox-dynamic ready in $bin"
