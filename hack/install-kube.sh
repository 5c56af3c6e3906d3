#!/usr/bin/env bash
# Builds the single-node Kubernetes of the kubelet tests
# (integration/cri/kube*_test.go), pinned by hack/kube/go.mod, into the same
# git-ignored tools directory as hack/install-tools.sh (default .tools/bin):
#   kube     - one binary holding etcd, kube-apiserver,
#              kube-controller-manager, kube-scheduler, kubelet and kubectl
#              (hack/kube/main.go; `kube kubelet --config ...`)
#   kubectl  - a link to it (it dispatches on the name it is called as)
# Reuses what is already there when its version stamp matches, so a second run
# is instant. Needs Go and the module proxy. A cold build takes 20 to 30
# minutes on two cores (measured: integration/README.md).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
bin=${TOOLS_BIN:-$root/.tools/bin}
mkdir -p "$bin"

# Keep in step with hack/kube/go.mod (k8s.io/kubernetes and every staging
# module at the matching v0 release; etcd as Kubernetes requires it).
KUBE_VERSION=v1.37.2

log() { printf 'install-kube: %s\n' "$*" >&2; }

cd "$root/hack/kube"
grep -q "k8s.io/kubernetes $KUBE_VERSION\$" go.mod || {
  log "hack/kube/go.mod does not require k8s.io/kubernetes $KUBE_VERSION"; exit 1
}
# The stamp covers the module files too: a changed pin or main.go rebuilds.
stamp="$KUBE_VERSION $(cat go.mod go.sum main.go | sha256sum | cut -c1-16)"
if [ -x "$bin/kube" ] && [ "$(cat "$bin/.kube.version" 2>/dev/null)" = "$stamp" ]; then
  log "kube $KUBE_VERSION already in $bin"
  exit 0
fi
# go.sum (committed) pins the hashes; the checksum database is not reachable
# from every build machine. Static, like the upstream release binaries.
export GOSUMDB=off GOFLAGS="-mod=readonly -buildvcs=false" CGO_ENABLED=0
log "building kube $KUBE_VERSION (etcd, apiserver, controller-manager, scheduler, kubelet, kubectl)"
start=$(date +%s)
ver="-X k8s.io/component-base/version.gitVersion=$KUBE_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=37 -X k8s.io/client-go/pkg/version.gitVersion=$KUBE_VERSION"
go build -trimpath -ldflags "-s -w $ver" -o "$bin/kube.new" .
mv "$bin/kube.new" "$bin/kube"
ln -sf kube "$bin/kubectl"
echo "$stamp" >"$bin/.kube.version"
log "kube ready in $bin ($(($(date +%s) - start)) s)"
