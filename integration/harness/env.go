// Package harness runs the hardened shim against a real, private containerd:
// it builds the shim and hardenctl, starts containerd from the pinned tools
// (hack/install-tools.sh) with every path under one short temporary
// directory, builds and imports a busybox image locally, runs containers
// through a runtime, and cleans up after itself (processes, mounts,
// cgroups). It never touches the host's /run/containerd, /var/lib/containerd
// or default sockets: the private containerd runs in its own mount namespace
// in which /run is a directory of the temporary tree (the runc shim keeps
// its runc state in /run/containerd/runc whatever containerd's state dir is).
//
// The integration tests (build tag "integration"), hardened-bench and
// hardened-demo are built on it.
package harness

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Environment variables the harness reads.
const (
	// EnvRequire turns every "cannot run here" skip into a failure (CI).
	EnvRequire = "HARDENED_REQUIRE_INTEGRATION"
	// EnvToolsBin overrides the tools directory (default <repo>/.tools/bin).
	// The Makefile exports TOOLS_BIN; both names are honoured.
	EnvToolsBin = "HARDENED_TOOLS_BIN"
	// EnvShimBinary uses a prebuilt shim binary instead of building one
	// (and the hardened-runsc next to it, when there is one).
	EnvShimBinary = "HARDENED_SHIM_BINARY"
	// EnvShimStandIn, when "runc", stands containerd's stock runc shim in
	// for the hardened shim: only for developing the harness itself (the
	// hardening assertions then fail, as they should).
	EnvShimStandIn = "HARDENED_SHIM_STANDIN"
	// EnvKeep keeps the temporary directory (and its containerd log).
	EnvKeep = "HARDENED_KEEP"
)

// The shim's test hook (shim/testhook_on.go): a shim built with
// TestHookTag runs the program named by TestHookEnv in its environment
// (containerd's: Options.Env) after pinning a Create's mount sources and
// right before the runtime's create. Builds without the tag have no hook.
const (
	TestHookTag = "hardened_testhook"
	TestHookEnv = "HARDENED_TEST_HOOK_AFTER_PIN"
)

// Runtime names.
const (
	RuntimeHardened = "io.containerd.hardened.v2"
	RuntimeRunc     = "io.containerd.runc.v2"
	ShimBinary      = "containerd-shim-hardened-v2"
	CLIBinary       = "hardenctl"
	// WrapperBinary is the shim's runsc wrapper, installed next to it.
	WrapperBinary = "hardened-runsc"
)

// RequiredTools are the binaries hack/install-tools.sh puts in .tools/bin.
var RequiredTools = []string{"containerd", "ctr", "containerd-shim-runc-v2", "runc", "runsc"}

// ErrUnavailable is wrapped by every reason the harness cannot run here
// (not root, tools missing, shim source missing). Tests skip on it unless
// HARDENED_REQUIRE_INTEGRATION=1.
var ErrUnavailable = errors.New("integration environment unavailable")

// Required reports whether HARDENED_REQUIRE_INTEGRATION asks for failures
// instead of skips.
func Required() bool {
	v := strings.ToLower(os.Getenv(EnvRequire))
	return v == "1" || v == "true" || v == "yes"
}

// RepoRoot finds the module root of github.com/hardened-dev/hardened from
// the working directory upwards.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.Contains(string(data), "module github.com/hardened-dev/hardened\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("%w: no go.mod of github.com/hardened-dev/hardened above the working directory", ErrUnavailable)
		}
		dir = parent
	}
}

// ToolsBin returns the directory of the pinned tools.
func ToolsBin(repo string) string {
	for _, k := range []string{EnvToolsBin, "TOOLS_BIN"} {
		if v := os.Getenv(k); v != "" {
			return v
		}
	}
	return filepath.Join(repo, ".tools", "bin")
}

// CheckHost returns an error wrapping ErrUnavailable when the integration
// tests cannot run on this machine: not root, or a pinned tool missing.
func CheckHost(toolsBin string) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("%w: must run as root (euid is %d)", ErrUnavailable, os.Geteuid())
	}
	var missing []string
	for _, t := range RequiredTools {
		if fi, err := os.Stat(filepath.Join(toolsBin, t)); err != nil || fi.Mode()&0o111 == 0 {
			missing = append(missing, t)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: missing %s in %s (run `make tools` or hack/install-tools.sh)",
			ErrUnavailable, strings.Join(missing, ", "), toolsBin)
	}
	if _, err := os.Stat(BusyboxPath); err != nil {
		return fmt.Errorf("%w: %s missing (Debian package busybox-static)", ErrUnavailable, BusyboxPath)
	}
	return nil
}

// Binaries are the project's binaries, built for one run.
type Binaries struct {
	// Dir holds containerd-shim-hardened-v2, hardened-runsc (and
	// hardenctl): it goes first on the private containerd's PATH.
	Dir string
	// Shim is the hardened shim binary.
	Shim string
	// Wrapper is the shim's runsc wrapper, next to Shim.
	Wrapper string
	// CLI is hardenctl ("" when it could not be built).
	CLI string
	// StandIn is true when the stock runc shim stands in for the shim.
	StandIn bool
}

// Build builds the shim, its runsc wrapper and hardenctl from the
// repository into dir (a temporary directory the caller removes), the
// wrapper next to the shim as installed on a node. HARDENED_SHIM_BINARY
// uses a prebuilt shim (and the hardened-runsc next to it, if any);
// HARDENED_SHIM_STANDIN=runc copies the stock runc shim under the hardened
// shim's name. A hardenctl next to a prebuilt shim is used as is. hardenctl is optional: a build failure of it is returned as
// cliErr, not as err. tags are build tags for the shim (TestHookTag).
func Build(repo, toolsBin, dir string, tags ...string) (b *Binaries, cliErr error, err error) {
	b = &Binaries{Dir: dir, Shim: filepath.Join(dir, ShimBinary), Wrapper: filepath.Join(dir, WrapperBinary)}
	prebuiltWrapper := false
	switch {
	case os.Getenv(EnvShimBinary) != "":
		if err := copyFile(os.Getenv(EnvShimBinary), b.Shim); err != nil {
			return nil, nil, fmt.Errorf("failed to copy %s: %w", EnvShimBinary, err)
		}
		next := filepath.Join(filepath.Dir(os.Getenv(EnvShimBinary)), WrapperBinary)
		if _, err := os.Stat(next); err == nil {
			if err := copyFile(next, b.Wrapper); err != nil {
				return nil, nil, fmt.Errorf("failed to copy %s: %w", next, err)
			}
			prebuiltWrapper = true
		}
	case os.Getenv(EnvShimStandIn) == "runc":
		if err := copyFile(filepath.Join(toolsBin, "containerd-shim-runc-v2"), b.Shim); err != nil {
			return nil, nil, fmt.Errorf("failed to copy the stand-in shim: %w", err)
		}
		b.StandIn = true
		b.Wrapper = ""
	default:
		if _, err := os.Stat(filepath.Join(repo, "cmd", ShimBinary)); err != nil {
			return nil, nil, fmt.Errorf("%w: ./cmd/%s does not exist yet (set %s=runc to develop the harness against the stock shim)",
				ErrUnavailable, ShimBinary, EnvShimStandIn)
		}
		if err := goBuild(repo, "./cmd/"+ShimBinary, b.Shim, tags...); err != nil {
			return nil, nil, err
		}
	}
	if !prebuiltWrapper && !b.StandIn {
		if err := goBuild(repo, "./cmd/"+WrapperBinary, b.Wrapper); err != nil {
			return nil, nil, err
		}
	}
	prebuiltCLI := ""
	if v := os.Getenv(EnvShimBinary); v != "" {
		prebuiltCLI = filepath.Join(filepath.Dir(v), CLIBinary)
	}
	if _, err := os.Stat(prebuiltCLI); prebuiltCLI != "" && err == nil {
		// A prebuilt hardenctl next to the prebuilt shim (the VM guest has
		// no Go toolchain).
		cli := filepath.Join(dir, CLIBinary)
		if cliErr = copyFile(prebuiltCLI, cli); cliErr == nil {
			b.CLI = cli
		}
	} else if _, err := os.Stat(filepath.Join(repo, "cmd", CLIBinary)); err == nil {
		cli := filepath.Join(dir, CLIBinary)
		if cliErr = goBuild(repo, "./cmd/"+CLIBinary, cli); cliErr == nil {
			b.CLI = cli
		}
	} else {
		cliErr = fmt.Errorf("./cmd/%s does not exist", CLIBinary)
	}
	return b, cliErr, nil
}

func goBuild(repo, pkg, out string, tags ...string) error {
	goBin := "go"
	if p, err := exec.LookPath("go"); err == nil {
		goBin = p
	} else if _, err := os.Stat("/usr/local/go/bin/go"); err == nil {
		goBin = "/usr/local/go/bin/go"
	}
	args := []string{"build", "-o", out}
	if len(tags) > 0 {
		args = append(args, "-tags", strings.Join(tags, ","))
	}
	cmd := exec.Command(goBin, append(args, pkg)...)
	cmd.Dir = repo
	if output, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("failed to build %s: %w\n%s", pkg, err, output)
	}
	return nil
}

func copyFile(src, dst string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, data, 0o755)
}
