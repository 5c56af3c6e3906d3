package shim

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"

	"github.com/containerd/errdefs"

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
	// defaultRunscRoot is runsc's state root when the policy sets none;
	// runc's default is the stock shim's (/run/containerd/runc).
	defaultRunscRoot = "/run/containerd/runsc"
)

func runDir() string {
	if d := os.Getenv(RunDirEnv); d != "" {
		return d
	}
	return DefaultRunDir
}

// backend is the OCI binary a container runs with.
type backend struct {
	// Name is "runc" or "gvisor".
	Name string
	// Binary is options.BinaryName: runc's path, or the runsc wrapper.
	Binary string
	// Root is options.Root ("" for the stock default).
	Root string
}

// runtimeConfig returns the policy's runtime name with its binary's
// absolute path.
func runtimeConfig(pol *policy.Policy, name string) (policy.Runtime, string, error) {
	rt, ok := pol.Runtimes[name]
	if !ok {
		return rt, "", fmt.Errorf("the node policy defines no runtime %q (has: %s): %w", name, strings.Join(pol.RuntimeNames(), ", "), errdefs.ErrFailedPrecondition)
	}
	path, err := lookPath(rt.Path)
	if err != nil {
		return rt, "", fmt.Errorf("runtime %q: %w: %w", name, err, errdefs.ErrFailedPrecondition)
	}
	return rt, path, nil
}

// runcBinary returns the policy's runc binary and root.
func runcBinary(np *nodePolicy) (string, string, error) {
	rt, path, err := runtimeConfig(np.pol, policy.RuntimeRunc)
	if err != nil {
		return "", "", err
	}
	return path, rt.Root, nil
}

// lookPath resolves a bare name in the shim's PATH (containerd's), and
// cleans an absolute path. A relative path with a slash is refused: it
// would depend on the bundle being the working directory.
func lookPath(p string) (string, error) {
	switch {
	case p == "":
		return "", fmt.Errorf("no binary path")
	case filepath.IsAbs(p):
		return filepath.Clean(p), nil
	case strings.ContainsRune(p, '/'):
		return "", fmt.Errorf("binary path %q is neither absolute nor a bare name", p)
	}
	return exec.LookPath(p)
}

// gateFunc checks a runc binary (version with known escapes: refused).
type gateFunc func(ctx context.Context, path string) error

// prepareBackend resolves the backend name to what the runc shim code runs:
// runc's path, or for gVisor the runsc wrapper, created on first use. (The
// runc gate is the caller's: in audit mode its refusal is only reported.)
func prepareBackend(pol *policy.Policy, name, runDir string) (*backend, error) {
	rt, path, err := runtimeConfig(pol, name)
	if err != nil {
		return nil, err
	}
	switch name {
	case policy.RuntimeRunc:
		return &backend{Name: name, Binary: path, Root: rt.Root}, nil
	case policy.RuntimeGVisor:
		exe, err := wrapperBinary()
		if err != nil {
			return nil, err
		}
		wrapper, err := ensureRunscWrapper(runDir, exe, runscConfig{Path: path, Args: rt.Args})
		if err != nil {
			return nil, fmt.Errorf("failed to prepare runsc: %w", err)
		}
		root := rt.Root
		if root == "" {
			root = defaultRunscRoot
		}
		return &backend{Name: name, Binary: wrapper, Root: root}, nil
	default:
		return nil, fmt.Errorf("unknown runtime %q (want %s or %s): %w", name, policy.RuntimeRunc, policy.RuntimeGVisor, errdefs.ErrFailedPrecondition)
	}
}

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
