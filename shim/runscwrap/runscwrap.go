// Package runscwrap is the runsc wrapper: the OCI binary the shim hands the
// runc shim code for a gVisor container (options.BinaryName).
//
// The runc shim code drives its OCI binary through go-runc, and the only
// knob it has is the binary's path. gVisor needs two things that path alone
// cannot give it:
//
//   - global flags: runsc ignores the spec's seccomp filter unless it is
//     started with --oci-seccomp, and the node policy adds its own
//     ([runtimes.gvisor] args: --platform, --network, ...);
//   - stdio ownership for `runsc start`: runsc hands the stdio of `start`
//     to a pod's app container, while go-runc runs `start` without the
//     container's IO and reads its output through a pipe: the running
//     container would hold that pipe, so the read never sees EOF and
//     StartContainer hangs (seen with a goroutine dump of the shim), and
//     the container's output would go there.
//
// The wrapper is its own small binary (cmd/hardened-runsc), installed next
// to the shim: go-runc runs it for every runsc call of a container (create,
// start, state, kill, delete, ...), so what it costs at startup is paid
// several times per container. It imports the standard library and
// golang.org/x/sys only, and nothing here may pull in more: the shim's
// binary starts in ~6 ms (containerd, gRPC and protobuf registrations), this
// one in ~1 ms.
//
// The shim points BinaryName at a symlink to the wrapper binary named Name,
// in a directory that also holds ConfigFile (runsc's path and flags). Every
// subcommand but `start`, `kill` and a pod app container's `create` is a
// plain execve of runsc with the flags inserted: same pid, same stdio, no
// extra process. `start` of a pod's app container runs runsc with the
// container's stdio, which the container's waiter has kept since create
// (subcontainer.go).
package runscwrap

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/hardened-dev/hardened/internal/version"
)

// Name is the wrapper's name: its binary's and the symlink's the shim
// creates for each runsc configuration.
const Name = "hardened-runsc"

// ConfigFile is the wrapper's configuration, next to its symlink.
const ConfigFile = "runsc.json"

// Config is the wrapper's configuration.
type Config struct {
	// Path is runsc's absolute path.
	Path string `json:"path"`
	// Args are global flags inserted before go-runc's arguments.
	Args []string `json:"args,omitempty"`
}

// IsWrapper reports whether argv0 names the wrapper (its symlink or its
// binary).
func IsWrapper(argv0 string) bool {
	return filepath.Base(argv0) == Name
}

// Main runs the wrapper with os.Args and exits.
func Main() {
	os.Exit(Run(os.Args, os.Stdin, os.Stdout, os.Stderr))
}

// Run runs the wrapper and returns its exit status. argv[0] must be the
// path of the symlink the shim created: its directory holds ConfigFile.
func Run(argv []string, stdin, stdout, stderr *os.File) int {
	fail := func(err error) int {
		fmt.Fprintf(stderr, "%s: %v\n", Name, err)
		return 127
	}
	// Its own version first; runsc's follows when it is configured.
	versionOnly := len(argv) == 2 && (argv[1] == "--version" || argv[1] == "-version")
	if versionOnly {
		fmt.Fprintln(stdout, version.String(Name))
	}
	self := argv[0]
	if !filepath.IsAbs(self) {
		p, err := exec.LookPath(self)
		if err != nil {
			return fail(fmt.Errorf("failed to locate the wrapper's directory: %w", err))
		}
		self = p
	}
	cfg, err := ReadConfig(filepath.Dir(self))
	if err != nil {
		if versionOnly {
			return 0
		}
		return fail(err)
	}
	if len(argv) > 1 && argv[1] == waitFlag {
		return runWaiter(self, cfg, argv[2:], stderr)
	}
	args := runscArgv(cfg, argv[1:])
	switch sub, subArgs := splitSubcommand(argv[1:]); {
	case sub == "start" && !isShimContainer(subArgs):
		return runStart(self, argv[1:], args, stdin, stdout, stderr)
	case sub == "kill":
		return runKill(args, stdin, stdout, stderr)
	case sub == "create" && isSubcontainer(flagValue(subArgs, "bundle")):
		return runCreateSubcontainer(self, cfg, argv[1:], stdin, stdout, stderr)
	}
	// execve keeps the pid go-runc waits on and passes stdio as is.
	return fail(syscall.Exec(cfg.Path, args, os.Environ()))
}

// isShimContainer reports whether the container a subcommand names (its
// last argument) is the one the shim was started for: the shim runs, and
// runs the wrapper, in that container's bundle. It is runsc's root
// container (a pod's sandbox, or a container of its own), whose sandbox
// and gofer its `create` started: its `start` starts no process, and is
// exec'd like the other subcommands.
func isShimContainer(subArgs []string) bool {
	if len(subArgs) == 0 {
		return false
	}
	id := subArgs[len(subArgs)-1]
	cwd, err := os.Getwd()
	return err == nil && id != "" && !strings.HasPrefix(id, "-") && filepath.Base(cwd) == id
}

// runStart runs `runsc ... start` of a pod's app container, never on the
// pipes go-runc gave us: runsc hands the stdio of `start` to the app
// container (its stdin, stdout and stderr; runsc's startImpl), so a
// go-runc pipe there would be held open by the running container and
// go-runc's read of start's output would never end.
//
// The container's own stdio is what go-runc gave `create` (go-runc's
// Start passes none): the subcontainer's waiter holds it since create
// (runCreateSubcontainer), and start takes it from the waiter
// (waiterStdio) and runs runsc with it, as gVisor's own shim runs
// `runsc start` with the container's IO. Without a waiter (a create that
// did not go through the wrapper) runsc's stdout and stderr go to memory
// files, relayed once it exits: the container runs, its output is lost,
// and the wrapper says so on stderr.
func runStart(self string, goRuncArgs, args []string, stdin, stdout, stderr *os.File) int {
	_, subArgs := splitSubcommand(goRuncArgs)
	id := ""
	if len(subArgs) > 0 {
		id = subArgs[len(subArgs)-1]
	}
	stdio, err := waiterStdio(self, waiterKey(goRuncArgs, id))
	if err != nil {
		fmt.Fprintf(stderr, "%s: container %s: no stdio kept by its waiter (%v): runsc start runs with its output on memory files, "+
			"and the container's output is lost unless it has a terminal\n", Name, id, err)
		code, out, errOut, err := runCaptured(args, stdin)
		if err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", Name, err)
			return 127
		}
		_, _ = stdout.Write(out)
		_, _ = stderr.Write(errOut)
		return code
	}
	defer closeAll(stdio)
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdio[0], stdio[1], stdio[2]
	// go-runc kills us with SIGKILL when its context ends; take runsc along.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	code := exitCode(cmd.Run(), stderr, args[0])
	if code != 0 {
		fmt.Fprintf(stderr, "%s: runsc start of container %s exited %d; runsc wrote its error to the container's stderr and to its log\n", Name, id, code)
	}
	return code
}

// runscNotRunning are runsc's words for a container or sandbox that has
// stopped ("sandbox is not running", "cannot signal container "x" in state
// stopped").
var runscNotRunning = []string{"is not running", "in state stopped", "not running"}

// runKill runs `runsc kill` and words a kill of a stopped container the
// way runc does ("container not running"): the runc shim code treats that
// as "already exited" (NotFound), anything else as a failed kill. Without
// it, CRI's handling of a gVisor pod sandbox's exit (which kills it again)
// fails with "sandbox is not running" and StopPodSandbox never succeeds.
func runKill(args []string, stdin, stdout, stderr *os.File) int {
	code, out, errOut, err := runCaptured(args, stdin)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", Name, err)
		return 127
	}
	_, _ = stdout.Write(out)
	_, _ = stderr.Write(errOut)
	if code != 0 {
		text := strings.ToLower(string(out) + string(errOut))
		for _, w := range runscNotRunning {
			if strings.Contains(text, w) {
				fmt.Fprintln(stderr, "container not running")
				break
			}
		}
	}
	return code
}

// runCaptured runs argv with stdout and stderr on memory files and returns
// its exit code and output.
func runCaptured(args []string, stdin *os.File) (code int, out, errOut []byte, err error) {
	outf, err := memFile("runsc-stdout")
	if err != nil {
		return 0, nil, nil, err
	}
	defer outf.Close()
	errf, err := memFile("runsc-stderr")
	if err != nil {
		return 0, nil, nil, err
	}
	defer errf.Close()

	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdin = stdin
	cmd.Stdout = outf
	cmd.Stderr = errf
	// go-runc kills us with SIGKILL when its context ends; take runsc along.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	runErr := cmd.Run()
	var msg bytes.Buffer
	code = exitCode(runErr, &msg, args[0])
	return code, readAll(outf), append(readAll(errf), msg.Bytes()...), nil
}

func memFile(name string) (*os.File, error) {
	fd, err := unix.MemfdCreate(name, unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("failed to create memfd: %w", err)
	}
	return os.NewFile(uintptr(fd), name), nil
}

func readAll(f *os.File) []byte {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil
	}
	b, _ := io.ReadAll(f)
	return b
}

// runscArgv builds runsc's argv: the configured global flags, with
// --oci-seccomp always among them, then go-runc's arguments unchanged
// (its own global flags, the subcommand and its arguments). Global flags
// must precede the subcommand, and go-runc's arguments start with its
// global flags, so inserting right after argv[0] is always in place.
func runscArgv(cfg Config, goRuncArgs []string) []string {
	argv := make([]string, 0, 2+len(cfg.Args)+len(goRuncArgs))
	argv = append(argv, cfg.Path)
	if !slices.ContainsFunc(cfg.Args, isOCISeccompFlag) {
		argv = append(argv, "--oci-seccomp")
	}
	argv = append(argv, cfg.Args...)
	return append(argv, goRuncArgs...)
}

// goRuncValueFlags are the global flags go-runc passes with their value as
// the next argument.
var goRuncValueFlags = map[string]bool{"root": true, "log": true, "log-format": true}

// splitSubcommand returns the runsc subcommand in go-runc's arguments (the
// first argument that is neither a flag nor a flag's value) and the
// arguments after it.
func splitSubcommand(args []string) (string, []string) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") {
			return a, args[i+1:]
		}
		name := strings.TrimLeft(a, "-")
		if strings.Contains(name, "=") {
			continue
		}
		if goRuncValueFlags[name] {
			i++
		}
	}
	return "", nil
}

// flagValue returns the value of flag name ("--name v" or "--name=v") in
// args, "" if absent.
func flagValue(args []string, name string) string {
	for i, a := range args {
		if !strings.HasPrefix(a, "-") {
			continue
		}
		n, v, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if n != name {
			continue
		}
		if hasValue {
			return v
		}
		if i+1 < len(args) {
			return args[i+1]
		}
	}
	return ""
}

func isOCISeccompFlag(a string) bool {
	name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
	return strings.HasPrefix(a, "-") && name == "oci-seccomp"
}

// CheckArgs refuses policy flags that would switch off what the wrapper
// guarantees.
func CheckArgs(args []string) error {
	for _, a := range args {
		if !isOCISeccompFlag(a) {
			continue
		}
		if _, v, ok := strings.Cut(a, "="); ok && v != "true" && v != "1" && v != "t" && v != "TRUE" && v != "True" {
			return fmt.Errorf("runsc flag %q disables the OCI seccomp filter; the shim always runs runsc with --oci-seccomp", a)
		}
	}
	return nil
}

// ReadConfig reads the configuration in dir (the wrapper symlink's
// directory).
func ReadConfig(dir string) (Config, error) {
	var cfg Config
	path := filepath.Join(dir, ConfigFile)
	data, err := os.ReadFile(path)
	if err != nil {
		return cfg, fmt.Errorf("failed to read the wrapper configuration: %w", err)
	}
	if err := json.Unmarshal(data, &cfg); err != nil {
		return cfg, fmt.Errorf("failed to parse %s: %w", path, err)
	}
	if !filepath.IsAbs(cfg.Path) {
		return cfg, fmt.Errorf("%s: runsc path %q is not absolute", path, cfg.Path)
	}
	return cfg, nil
}
