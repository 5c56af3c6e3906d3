# hardened: a containerd shim v2 that hardens every container it starts.
# `make help` lists the targets.

GO        ?= go
TOOLS_BIN ?= $(CURDIR)/.tools/bin
BIN       ?= $(CURDIR)/bin
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT    ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
LDFLAGS   := -X github.com/hardened-dev/hardened/internal/version.Version=$(VERSION) -X github.com/hardened-dev/hardened/internal/version.Commit=$(COMMIT)
# Integration tests need root and the pinned tools; CI sets this to turn
# their loud skips into failures.
HARDENED_REQUIRE_INTEGRATION ?=
# A count (Nx), not a duration: with a duration, Go 1.26's fuzz coordinator
# can fail a clean run with "context deadline exceeded" at the boundary
# (golang/go#75804, fixed in Go 1.27).
FUZZTIME  ?= 20000x

export PATH := $(TOOLS_BIN):$(PATH)

.PHONY: help
help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: tools
tools: ## install/build the pinned containerd, ctr, runc, runsc, crictl, critest, kube (Kubernetes) into .tools/bin
	bash hack/install-tools.sh
	@if [ -f hack/install-cri-tools.sh ]; then bash hack/install-cri-tools.sh; fi
	bash hack/install-kube.sh

.PHONY: build
build: ## build containerd-shim-hardened-v2, its runsc wrapper hardened-runsc and hardenctl into ./bin
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/...

# Static binaries for nodes: libseccomp linked in, no dependency on the
# node's libc (the installer image uses this).
STATIC_FLAGS := -tags "netgo osusergo" -ldflags '$(LDFLAGS) -linkmode external -extldflags "-static"'

.PHONY: build-static
build-static: ## build static binaries (libseccomp linked in) into ./bin, for nodes
	CGO_ENABLED=1 $(GO) build -trimpath $(STATIC_FLAGS) -o $(BIN)/ ./cmd/...

# A release: static binaries, a tarball of them, an SPDX SBOM (Go modules,
# the Go standard library, libseccomp) and SHA256SUMS over all of it, in
# $(DIST). VERSION comes from the tag (git describe).
DIST ?= $(CURDIR)/dist
GOARCH := $(shell $(GO) env GOARCH)
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || date +%s)
export SOURCE_DATE_EPOCH

.PHONY: release
release: ## static binaries, tarball, SPDX SBOM and SHA256SUMS into ./dist
	rm -rf $(DIST) && mkdir -p $(DIST)/bin
	$(MAKE) build-static BIN=$(DIST)/bin
	tar -C $(DIST)/bin --sort=name --owner=0 --group=0 --numeric-owner --mtime=@$(SOURCE_DATE_EPOCH) \
		-czf $(DIST)/hardened-$(VERSION)-linux-$(GOARCH).tar.gz .
	$(GO) run ./hack/sbom -name hardened -version $(VERSION) \
		-c libseccomp=$$(dpkg-query -W -f='$${Version}' libseccomp-dev) \
		$(DIST)/bin/* > $(DIST)/hardened-$(VERSION).spdx.json
	$(MAKE) installer-image-from-bin INSTALLER_BIN=$(DIST)/bin INSTALLER_OUT=$(DIST)/hardened-installer-$(VERSION).oci.tar
	cd $(DIST) && sha256sum bin/* hardened-$(VERSION)-linux-$(GOARCH).tar.gz hardened-$(VERSION).spdx.json hardened-installer-$(VERSION).oci.tar > SHA256SUMS
	cd $(DIST) && sha256sum -c --quiet SHA256SUMS
	@echo "release $(VERSION) in $(DIST):" && ls $(DIST)

# The node installer's image (deploy/base runs it), built without Docker or
# a registry: an OCI layout tar (`ctr images import`, or `skopeo copy
# oci-archive:FILE docker://REF` to push). Reproducible for a given commit.
INSTALLER_IMAGE ?= ghcr.io/hardened-dev/hardened-installer
INSTALLER_OUT   ?= $(DIST)/hardened-installer-$(VERSION).oci.tar
INSTALLER_BIN   ?= $(DIST)/installer-bin

.PHONY: installer-image
installer-image: tools ## the node installer image (static binaries, runsc, install.sh on busybox) as an OCI tar in ./dist
	$(MAKE) build-static BIN=$(INSTALLER_BIN)
	$(MAKE) installer-image-from-bin

.PHONY: installer-image-from-bin
installer-image-from-bin:
	mkdir -p $(dir $(INSTALLER_OUT))
	$(GO) run ./hack/installer-image -bin $(INSTALLER_BIN) -runsc $(TOOLS_BIN)/runsc \
		-name $(INSTALLER_IMAGE):$(VERSION) -version $(VERSION) -revision $(COMMIT) -o $(INSTALLER_OUT)

.PHONY: unit
unit: ## unit tests, fuzz seeds, golden files (no root needed); deploy manifests
	$(GO) test -count=1 ./...
	cd deploy && $(GO) test -count=1 ./...

.PHONY: integration
integration: tools build ## tests against a private containerd + runc + runsc (root)
	HARDENED_REQUIRE_INTEGRATION=$(HARDENED_REQUIRE_INTEGRATION) TOOLS_BIN=$(TOOLS_BIN) \
	  $(GO) test -count=1 -tags integration -timeout 50m -v $$($(GO) list -tags integration ./integration/... | grep -v '/integration/vm$$')

# The VM runs alone: qemu (software emulation) takes every core.
.PHONY: test-vm
test-vm: tools ## integration cases on Debian's kernel under qemu: cgroup v2 and AppArmor (root)
	HARDENED_REQUIRE_INTEGRATION=$(HARDENED_REQUIRE_INTEGRATION) TOOLS_BIN=$(TOOLS_BIN) \
	  $(GO) test -count=1 -tags integration -timeout 45m -v ./integration/vm/

.PHONY: test
test: unit integration test-vm ## everything CI runs: unit + integration + the VM

# The version matrix (hack/matrix.sh): the host suite's short form against
# containerd 2.3/2.4 x runc 1.3/1.4/1.5 and a previous runsc, each
# combination's tools built once into .tools/matrix/<name>/bin. The table is
# in .tools/matrix/results.txt.
.PHONY: test-matrix
test-matrix: tools ## the host suite's short form against every containerd/runc/runsc combination (root)
	bash hack/matrix.sh

# make test already runs the pinned combination; CI adds the oldest.
.PHONY: test-matrix-ci
test-matrix-ci: tools ## the matrix's oldest combination only, containerd 2.3 + runc 1.3 (root; CI)
	bash hack/matrix.sh containerd2.3-runc1.3

.PHONY: fuzz
fuzz: ## run every native fuzzer for FUZZTIME (executions) each
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
	    echo "fuzz $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; done

.PHONY: bench
bench: tools build ## engine benchmarks + start/memory side by side with the stock runc shim
	$(GO) test -run '^$$' -bench . -benchmem ./hardening/
	TOOLS_BIN=$(TOOLS_BIN) $(GO) run ./integration/cmd/hardened-bench

.PHONY: demo
demo: tools build ## the stock runc shim vs hardened vs hardened+gVisor, side by side
	TOOLS_BIN=$(TOOLS_BIN) $(GO) run ./integration/cmd/hardened-demo

# Pinned static analyser, run from the module proxy (no install step).
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: lint
lint: ## gofmt, go vet, staticcheck (pinned), go mod tidy -diff (both modules)
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags integration ./integration/...
	cd deploy && $(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...
	$(GO) run $(STATICCHECK) -tags integration ./integration/...
	cd deploy && $(GO) run $(STATICCHECK) ./...
	$(GO) mod tidy -diff
	cd deploy && $(GO) mod tidy -diff

.PHONY: clean
clean: ## remove ./bin and ./dist (keeps .tools)
	rm -rf $(BIN) $(DIST)
