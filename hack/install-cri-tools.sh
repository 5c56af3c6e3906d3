#!/usr/bin/env bash
# Builds the CRI test tools, pinned by hack/cri-tools/go.mod, into the same
# git-ignored tools directory as hack/install-tools.sh (default .tools/bin):
#   crictl  - the CRI command line client (integration/cri drives pods with it)
#   critest - cri-tools' CRI validation suite (a compiled Ginkgo test binary)
# Reuses what is already there when its version stamp matches, so a second run
# is instant. Needs only Go and the module proxy.
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

log "crictl and critest ready in $bin"
