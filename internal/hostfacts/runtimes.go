package hostfacts

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

	"github.com/hardened-dev/hardened/internal/decide"
	"github.com/hardened-dev/hardened/internal/policy"
	"github.com/hardened-dev/hardened/profiles"
	"github.com/hardened-dev/hardened/shim/runscwrap"
)

// Runtime directories. The shim keeps node-wide files (the runsc wrapper's
// symlink directories, the runc gate's cache, staged mount sources) under
// RunDir, on tmpfs.
const (
	// DefaultRunDir is the shim's node-wide runtime directory.
	DefaultRunDir = "/run/containerd-hardened"
	// RunDirEnv overrides DefaultRunDir (tests, private containerd
	// instances: containerd passes its environment to its shims).
	RunDirEnv = "HARDENED_RUN_DIR"
)

// RunDir is the shim's node-wide runtime directory: $HARDENED_RUN_DIR, or
// DefaultRunDir.
func RunDir() string {
	if d := os.Getenv(RunDirEnv); d != "" {
		return d
	}
	return DefaultRunDir
}

// DefaultRunscRoot is runsc's state root when the policy sets none; runc's
// default is the stock shim's (/run/containerd/runc).
const DefaultRunscRoot = "/run/containerd/runsc"

// Wrapper is the runsc wrapper binary as found on this host (or why it is
// not there): LocateRunscWrapper's result.
type Wrapper struct {
	Path string
	Err  error
}

// Runtimes returns the policy's runtimes as prepared on this host, by
// name: runc's path, or for gVisor the runsc wrapper's. With install, a
// gVisor runtime's wrapper directory under runDir is created if missing
// (the shim, at Create); without, only its path is computed (hardenctl
// explain).
func Runtimes(pol *policy.Policy, runDir string, wrapper Wrapper, install bool) map[profiles.Runtime]decide.Runtime {
	out := make(map[profiles.Runtime]decide.Runtime, len(pol.Runtimes))
	for _, name := range pol.RuntimeNames() {
		out[name] = prepare(pol, name, runDir, wrapper, install)
	}
	return out
}

// prepare resolves the runtime name to what the runc shim code runs.
func prepare(pol *policy.Policy, name profiles.Runtime, runDir string, wrapper Wrapper, install bool) decide.Runtime {
	rt, path, err := RuntimeConfig(pol, name)
	if err != nil {
		return decide.Runtime{Err: err}
	}
	switch name {
	case profiles.RuntimeRunc:
		return decide.Runtime{Binary: path, Root: rt.Root}
	case profiles.RuntimeGVisor:
		if wrapper.Err != nil {
			return decide.Runtime{Err: wrapper.Err}
		}
		cfg := runscwrap.Config{Path: path, Args: rt.Args}
		link, err := runscWrapperLink(runDir, wrapper.Path, cfg)
		if err == nil && install {
			link, err = ensureRunscWrapper(runDir, wrapper.Path, cfg)
		}
		if err != nil {
			return decide.Runtime{Err: fmt.Errorf("failed to prepare runsc: %w", err)}
		}
		root := rt.Root
		if root == "" {
			root = DefaultRunscRoot
		}
		return decide.Runtime{Binary: link, Root: root}
	default:
		return decide.Runtime{Err: fmt.Errorf("unknown runtime %q (want %s or %s): %w", name, profiles.RuntimeRunc, profiles.RuntimeGVisor, errdefs.ErrFailedPrecondition)}
	}
}

// RuntimeConfig returns the policy's runtime name with its binary's
// absolute path.
func RuntimeConfig(pol *policy.Policy, name profiles.Runtime) (policy.Runtime, string, error) {
	rt, ok := pol.Runtimes[name]
	if !ok {
		return rt, "", fmt.Errorf("the node policy defines no runtime %q (has: %s): %w", name, pol.RuntimeList(), errdefs.ErrFailedPrecondition)
	}
	path, err := LookPath(rt.Path)
	if err != nil {
		return rt, "", fmt.Errorf("runtime %q: %w: %w", name, err, errdefs.ErrFailedPrecondition)
	}
	return rt, path, nil
}

// LookPath resolves a bare name in the shim's PATH (containerd's), and
// cleans an absolute path. A relative path with a slash is refused: it
// would depend on the bundle being the working directory.
func LookPath(p string) (string, error) {
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

var (
	wrapperMu   sync.Mutex
	wrapperPath string // found once, kept for the process
)

// LocateRunscWrapper returns the wrapper binary's absolute path (see
// FindRunscWrapper), found once per process.
func LocateRunscWrapper() (string, error) {
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
	p, err := FindRunscWrapper(exe)
	if err != nil {
		return "", err
	}
	wrapperPath = p
	return p, nil
}

// FindRunscWrapper looks for the wrapper binary next to the binary exe
// (where `make build`, the installer and the test harness put it), then in
// the shim's PATH (containerd's). Missing, it is an error: a gVisor
// container cannot run without it, and is refused.
func FindRunscWrapper(exe string) (string, error) {
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

// runscWrapperLink returns the path of the wrapper symlink for cfg under
// base, as ensureRunscWrapper creates it: base/runsc/<key>/hardened-runsc,
// key a hash of target and cfg.
func runscWrapperLink(base, target string, cfg runscwrap.Config) (string, error) {
	_, key, err := runscWrapperKey(target, cfg)
	if err != nil {
		return "", err
	}
	return filepath.Join(base, "runsc", key, runscwrap.Name), nil
}

func runscWrapperKey(target string, cfg runscwrap.Config) ([]byte, string, error) {
	if err := runscwrap.CheckArgs(cfg.Args); err != nil {
		return nil, "", err
	}
	want, err := json.Marshal(cfg)
	if err != nil {
		return nil, "", err
	}
	sum := sha256.Sum256(append([]byte(target+"\x00"), want...))
	return want, hex.EncodeToString(sum[:12]), nil
}

// ensureRunscWrapper returns the path of a wrapper symlink for cfg, creating
// it under base/runsc/<key>/ if needed. target is the wrapper binary the
// symlink points to. The directory is named by a hash of target and cfg,
// written in a temporary directory and renamed into place, so concurrent
// shims either create the same content or find it already there.
func ensureRunscWrapper(base, target string, cfg runscwrap.Config) (string, error) {
	want, key, err := runscWrapperKey(target, cfg)
	if err != nil {
		return "", err
	}
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

// writeFileSync writes a new file and syncs it (no rename: the caller
// publishes its directory atomically).
func writeFileSync(path string, data []byte, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
