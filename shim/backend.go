package shim

import (
	"context"
	"os"
	"sync"

	"github.com/hardened-dev/hardened/internal/hostfacts"
	"github.com/hardened-dev/hardened/internal/hostprobe"
	"github.com/hardened-dev/hardened/internal/policy"
)

// Runtime directories. The shim keeps node-wide files (the runsc wrapper's
// symlink directories, the runc gate's cache) under RunDir, on tmpfs.
const (
	// DefaultRunDir is the shim's node-wide runtime directory.
	DefaultRunDir = "/run/containerd-hardened"
	// RunDirEnv overrides DefaultRunDir (tests, private containerd
	// instances: containerd passes its environment to its shims).
	RunDirEnv = "HARDENED_RUN_DIR"
)

func runDir() string {
	if d := os.Getenv(RunDirEnv); d != "" {
		return d
	}
	return DefaultRunDir
}

// runcBinary returns the policy's runc binary and root.
func runcBinary(np *nodePolicy) (string, string, error) {
	rt, path, err := hostfacts.RuntimeConfig(np.pol, policy.RuntimeRunc)
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
