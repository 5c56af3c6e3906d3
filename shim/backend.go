package shim

import (
	"context"
	"sync"

	"github.com/hardened-dev/hardened/internal/hostfacts"
	"github.com/hardened-dev/hardened/internal/hostprobe"
	"github.com/hardened-dev/hardened/profiles"
)

// runcBinary returns the policy's runc binary and root.
func runcBinary(np *nodePolicy) (string, string, error) {
	rt, path, err := hostfacts.RuntimeConfig(np.pol, profiles.RuntimeRunc)
	if err != nil {
		return "", "", err
	}
	return path, rt.Root, nil
}

// gateFunc checks a runc binary (version with known escapes: refused).
type gateFunc func(ctx context.Context, path string) error

var (
	appArmorOnce sync.Once
	appArmorOn   bool
)

// hostAppArmor reports whether the kernel enforces AppArmor, probed once
// per shim process.
func hostAppArmor() bool {
	appArmorOnce.Do(func() { appArmorOn = hostprobe.AppArmorEnabled() })
	return appArmorOn
}
