package shim

import (
	"context"

	"github.com/hardened-dev/hardened/internal/hostprobe"
)

// gateRunc refuses a runc binary with a known escape (hostprobe's table:
// CVE-2024-21626, CVE-2025-31133/52565/52881). The verdict is cached in
// cacheDir by the binary's identity, so a container start runs runc
// --version only when the binary changed.
func gateRunc(ctx context.Context, path, cacheDir string) error {
	_, err := hostprobe.GateRunc(ctx, path, cacheDir)
	return err
}
