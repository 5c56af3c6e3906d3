package shim

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"

	"github.com/containerd/errdefs"

	"github.com/hardened-dev/hardened/shim/runscwrap"
)

// The runsc wrapper (package runscwrap, binary hardened-runsc) stands
// between the runc shim code and runsc for a gVisor container. The shim
// gives it its configuration through a directory per runsc configuration,
// under RunDir: runsc/<hash>/{hardened-runsc,runsc.json}, the first a
// symlink to the wrapper binary. options.BinaryName is that symlink, so the
// wrapper finds its configuration next to argv[0]; the stock `delete` finds
// the same path in the bundle and reaches the same runsc.
//
// The wrapper is a separate small binary, not this one under another name:
// go-runc runs it for every runsc call (create, start, kill, delete, ...),
// and this binary's startup (~6 ms of containerd, gRPC and protobuf
// package initialisation) showed up in every one of them.

type runscConfig = runscwrap.Config

// wrapperBinary locates the wrapper binary; tests replace it.
var wrapperBinary = locateRunscWrapper

var (
	wrapperMu   sync.Mutex
	wrapperPath string // found once, kept for the process
)

// locateRunscWrapper returns the wrapper binary's absolute path (see
// findRunscWrapper), found once per process.
func locateRunscWrapper() (string, error) {
	wrapperMu.Lock()
	defer wrapperMu.Unlock()
	if wrapperPath != "" {
		return wrapperPath, nil
	}
	exe, err := os.Executable()
	if err == nil {
		exe, err = filepath.EvalSymlinks(exe)
	}
	if err != nil {
		exe = "" // PATH only
	}
	p, err := findRunscWrapper(exe)
	if err != nil {
		return "", err
	}
	wrapperPath = p
	return p, nil
}

// findRunscWrapper looks for the wrapper binary next to the shim binary exe
// (where `make build`, the installer and the test harness put it), then in
// the shim's PATH (containerd's). Missing, it is an error: a gVisor
// container cannot run without it, and is refused.
func findRunscWrapper(exe string) (string, error) {
	var tried []string
	if exe != "" {
		p := filepath.Join(filepath.Dir(exe), runscwrap.Name)
		if err := isExecutableFile(p); err == nil {
			return p, nil
		}
		tried = append(tried, filepath.Dir(exe))
	}
	if p, err := exec.LookPath(runscwrap.Name); err == nil && filepath.IsAbs(p) {
		if p, err = filepath.EvalSymlinks(p); err == nil {
			return p, nil
		}
	}
	tried = append(tried, "PATH")
	return "", fmt.Errorf("the runsc wrapper %s is not installed (looked in %s); install it next to containerd-shim-hardened-v2: %w",
		runscwrap.Name, strings.Join(tried, ", "), errdefs.ErrFailedPrecondition)
}

func isExecutableFile(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("%s is not an executable file", p)
	}
	return nil
}

var wrapperDirs sync.Map // base and key -> wrapper path, for this process

// ensureRunscWrapper returns the path of a wrapper symlink for cfg, creating
// it under base/runsc/<key>/ if needed. target is the wrapper binary the
// symlink points to. The directory is named by a hash of target and cfg,
// written in a temporary directory and renamed into place, so concurrent
// shims either create the same content or find it already there.
func ensureRunscWrapper(base, target string, cfg runscConfig) (string, error) {
	if err := runscwrap.CheckArgs(cfg.Args); err != nil {
		return "", err
	}
	want, err := json.Marshal(cfg)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(append([]byte(target+"\x00"), want...))
	key := hex.EncodeToString(sum[:12])
	// Cached per base directory: the same configuration under another
	// RunDir is another wrapper.
	cacheKey := base + "\x00" + key
	if p, ok := wrapperDirs.Load(cacheKey); ok {
		return p.(string), nil
	}
	parent := filepath.Join(base, "runsc")
	dir := filepath.Join(parent, key)
	link := filepath.Join(dir, runscwrap.Name)

	if err := verifyRunscWrapper(dir, target, want); err == nil {
		wrapperDirs.Store(cacheKey, link)
		return link, nil
	}
	if err := os.MkdirAll(parent, 0o711); err != nil {
		return "", fmt.Errorf("failed to create %s: %w", parent, err)
	}
	tmp, err := os.MkdirTemp(parent, ".tmp-"+key+"-")
	if err != nil {
		return "", fmt.Errorf("failed to create the wrapper directory: %w", err)
	}
	defer os.RemoveAll(tmp) // a no-op once renamed
	if err := os.Chmod(tmp, 0o711); err != nil {
		return "", err
	}
	if err := writeFileSync(filepath.Join(tmp, runscwrap.ConfigFile), want, 0o644); err != nil {
		return "", err
	}
	if err := os.Symlink(target, filepath.Join(tmp, runscwrap.Name)); err != nil {
		return "", fmt.Errorf("failed to create the wrapper symlink: %w", err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		// Another shim won the race (EEXIST/ENOTEMPTY): use its directory
		// if it holds the same thing.
		if verr := verifyRunscWrapper(dir, target, want); verr != nil {
			return "", fmt.Errorf("failed to install the runsc wrapper in %s: %w (existing: %v)", dir, err, verr)
		}
	}
	wrapperDirs.Store(cacheKey, link)
	return link, nil
}

func verifyRunscWrapper(dir, target string, want []byte) error {
	got, err := os.Readlink(filepath.Join(dir, runscwrap.Name))
	if err != nil {
		return err
	}
	if got != target {
		return fmt.Errorf("wrapper symlink points to %q, not %q", got, target)
	}
	data, err := os.ReadFile(filepath.Join(dir, runscwrap.ConfigFile))
	if err != nil {
		return err
	}
	if string(data) != string(want) {
		return fmt.Errorf("%s differs from the expected configuration", filepath.Join(dir, runscwrap.ConfigFile))
	}
	return nil
}
