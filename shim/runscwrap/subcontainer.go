package runscwrap

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hardened-dev/hardened/internal/atomicfile"
)

// Exits of a pod's app containers on gVisor.
//
// The runc shim code learns that a container exited when the pid runc
// wrote to --pid-file exits (it is the shim's child through the
// subreaper). For a pod's app container (a runsc subcontainer), runsc
// writes the pid of the pod's sandbox process: killing the app container
// leaves that process running, so StopContainer waits for an exit that
// never comes (seen: StopPodSandbox failing after its 2 minute deadline),
// and when the sandbox does exit every container of the pod "exits" at
// once. gVisor's own shim waits on each container with `runsc wait`.
//
// The wrapper does the same without touching the runc shim code: after
// `runsc create` of a subcontainer it starts a waiter (this binary again,
// through the wrapper symlink, with waitFlag) that runs `runsc wait <id>`
// and exits with the container's status, and writes the waiter's pid to
// the pid file. The waiter outlives the wrapper and is reparented to the
// shim, which reaps it as it would reap runc's init process. The waiter
// joins the sandbox process's cgroups, so that the shim's OOM watch and
// stats for the container see the pod's cgroup, as they would with the
// sandbox pid, rather than the shim's.

// waitFlag runs the wrapper as a subcontainer's waiter:
// hardened-runsc --hardened-wait <go-runc global flags...> <id>.
const waitFlag = "--hardened-wait"

// isSubcontainer reports whether the bundle is a CRI app container that
// runsc runs inside its pod's sandbox (the annotations runsc itself reads).
func isSubcontainer(bundle string) bool {
	if bundle == "" {
		return false
	}
	data, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		return false
	}
	var s struct {
		Annotations map[string]string `json:"annotations"`
	}
	if err := json.Unmarshal(data, &s); err != nil {
		return false
	}
	return s.Annotations[annContainerType] == containerTypeContainer
}

// CRI's annotation of a container's role in its pod (runsc reads it too).
const (
	annContainerType       = "io.kubernetes.cri.container-type"
	containerTypeContainer = "container"
)

func runCreateSubcontainer(self string, cfg Config, goRuncArgs []string, stdin, stdout, stderr *os.File) int {
	args := runscArgv(cfg, goRuncArgs)
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if code := exitCode(cmd.Run(), stderr, args[0]); code != 0 {
		return code
	}

	_, subArgs := splitSubcommand(goRuncArgs)
	pidFile := flagValue(subArgs, "pid-file")
	if pidFile == "" || len(subArgs) == 0 {
		return 0 // nobody tracks the pid
	}
	id := subArgs[len(subArgs)-1]
	globals := goRuncArgs[:len(goRuncArgs)-len(subArgs)-1]
	fail := func(err error) int {
		fmt.Fprintf(stderr, "%s: container %s: %v\n", Name, id, err)
		return 1
	}
	sandboxPid, err := readPid(pidFile)
	if err != nil {
		return fail(err)
	}

	waiter := exec.Command(self, append(append([]string{waitFlag}, globals...), id)...)
	waiter.Args[0] = self // the wrapper's name: main() dispatches on it
	// Not on its stdio (it outlives this call): the container's stdin,
	// stdout and stderr, what go-runc gave create, at waiterStdioFD.., for
	// the container's `runsc start` to take (runStart). It holds them until
	// the container exits, then exits and closes them: the shim's copy of
	// the container's output ends (EOF) when the container and it are gone.
	// A container with a terminal has none (runsc set its TTY up at create,
	// through the console socket), and go-runc then reads create's output
	// through a pipe the waiter must not hold.
	keepStdio := flagValue(subArgs, "console-socket") == ""
	if keepStdio {
		waiter.ExtraFiles = []*os.File{stdin, stdout, stderr}
	}
	waiter.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := waiter.Start(); err != nil {
		return fail(fmt.Errorf("failed to start the exit waiter: %w", err))
	}
	joinCgroups(waiter.Process.Pid, sandboxPid)
	pid := []byte(strconv.Itoa(waiter.Process.Pid))
	if key := waiterKey(globals, id); keepStdio && key != "" {
		// Without the record start cannot find the container's stdio; the
		// container still runs (runStart says its output is lost).
		if err := os.MkdirAll(filepath.Dir(waiterRecord(self, key)), 0o700); err == nil {
			_ = atomicfile.Write(waiterRecord(self, key), pid, 0o600)
		}
	}
	if err := atomicfile.Write(pidFile, pid, 0o644); err != nil {
		_ = waiter.Process.Kill()
		return fail(err)
	}
	_ = waiter.Process.Release()
	return 0
}

// waiterStdioFD is the first of the container's stdio descriptors in its
// waiter (stdin, stdout, stderr).
const waiterStdioFD = 3

// waiterKey names a subcontainer's waiter record: its id and runsc root
// (containerd ids are unique per namespace, and each namespace has a root
// of its own); "" for an id that is not a plain file name.
func waiterKey(goRuncArgs []string, id string) string {
	if id == "" || id != filepath.Base(id) || strings.HasPrefix(id, ".") {
		return ""
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte(flagValue(goRuncArgs, "root")))
	return fmt.Sprintf("%016x-%s", h.Sum64(), id)
}

// waiterRecord is the file holding the pid of the waiter of key, in the
// wrapper's directory.
func waiterRecord(self, key string) string {
	return filepath.Join(filepath.Dir(self), "waiters", key)
}

// waiterStdio returns the container's stdin, stdout and stderr that its
// waiter holds (pidfd_getfd: the same open files create had).
func waiterStdio(self, key string) ([]*os.File, error) {
	if key == "" {
		return nil, errors.New("no waiter for this container id")
	}
	pid, err := readPid(waiterRecord(self, key))
	if err != nil {
		return nil, err
	}
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return nil, fmt.Errorf("waiter %d: %w", pid, err)
	}
	defer unix.Close(pidfd)
	// The pidfd holds the process the record names, or one that reused its
	// pid: it must be this container's waiter.
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	args := strings.Split(strings.TrimSuffix(string(cmdline), "\x00"), "\x00")
	if err != nil || len(args) < 3 || args[1] != waitFlag || waiterKey(args[2:len(args)-1], args[len(args)-1]) != key {
		return nil, fmt.Errorf("process %d is not the container's waiter", pid)
	}
	var files []*os.File
	for i := range 3 {
		fd, err := unix.PidfdGetfd(pidfd, waiterStdioFD+i, 0)
		if err != nil {
			closeAll(files)
			return nil, fmt.Errorf("waiter %d: descriptor %d: %w", pid, waiterStdioFD+i, err)
		}
		files = append(files, os.NewFile(uintptr(fd), fmt.Sprintf("container-stdio-%d", i)))
	}
	return files, nil
}

func closeAll(files []*os.File) {
	for _, f := range files {
		_ = f.Close()
	}
}

// Polling intervals of a waiter whose `runsc wait` failed while the
// container exists: the first retry comes after waitPollMin, each next one
// after twice the last, up to waitRetry.
const (
	waitPollMin = 10 * time.Millisecond
	waitRetry   = time.Second
)

// runWaiter waits for a subcontainer with `runsc wait` and exits with its
// status (128+signal for a killed one, as the shim computes it for runc's
// init).
//
// The waiter starts right after `runsc create`, usually before the
// container's `runsc start`, and runsc's wait refuses a container that has
// not started ("container ... not started"). A failing wait is retried
// while `runsc state` says the container exists: reporting an exit for a
// live container would be worse than waiting. A container that started
// and already exited is "stopped" to `runsc state`, and its sandbox keeps
// its exit status until `runsc delete` (boot.Loader keeps the container's
// thread group until destroyContainer), so a stopped container's wait is
// retried too: a container that exits at once (`sh -c "exit 0"`) would
// otherwise be reported as exited 255 whenever its start and exit fell
// between the waiter's first wait and its state call. Only a container
// whose wait still fails once it is stopped (one that failed to start), or
// that runsc no longer knows, gets 255.
func runWaiter(self string, cfg Config, args []string, stderr io.Writer) int {
	// The container's stdio (runCreateSubcontainer) must not reach runsc.
	for fd := waiterStdioFD; fd < waiterStdioFD+3; fd++ {
		unix.CloseOnExec(fd)
	}
	if len(args) == 0 {
		fmt.Fprintf(stderr, "%s: %s needs a container id\n", Name, waitFlag)
		return 255
	}
	globals, id := args[:len(args)-1], args[len(args)-1]
	if key := waiterKey(globals, id); key != "" {
		defer func() {
			if pid, err := readPid(waiterRecord(self, key)); err == nil && pid == os.Getpid() {
				_ = os.Remove(waiterRecord(self, key))
			}
		}()
	}
	run := func(sub ...string) ([]byte, error) {
		argv := runscArgv(cfg, append(append(append([]string{}, globals...), sub...), id))
		return exec.Command(argv[0], argv[1:]...).Output()
	}
	poll := waitPollMin
	for stoppedSeen := false; ; {
		out, err := run("wait")
		if err == nil {
			var res struct {
				ExitStatus int `json:"exitStatus"`
			}
			if err := json.Unmarshal(out, &res); err == nil {
				return res.ExitStatus & 0xff
			}
		}
		state, serr := run("state")
		var st struct {
			Status string `json:"status"`
		}
		if serr != nil || json.Unmarshal(state, &st) != nil {
			return 255
		}
		switch st.Status {
		case "stopped":
			// Exited since the failed wait: its status is kept, ask again
			// (once: a container stopped without a status never started).
			if stoppedSeen {
				return 255
			}
			stoppedSeen = true
			continue
		case "creating", "created", "running", "paused":
		default:
			return 255
		}
		time.Sleep(poll)
		poll = min(2*poll, waitRetry)
	}
}

func exitCode(err error, stderr io.Writer, name string) int {
	var exitErr *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &exitErr):
		if ws, ok := exitErr.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return exitErr.ExitCode()
	default:
		fmt.Fprintf(stderr, "%s: failed to run %s: %v\n", Name, name, err)
		return 127
	}
}

func readPid(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("failed to read the pid file: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("pid file %s holds %q", path, b)
	}
	return pid, nil
}

// joinCgroups moves pid into the cgroups of ref (v1: every hierarchy; v2:
// the unified one). Best effort: a waiter left in the shim's cgroup only
// makes the container's stats and OOM watch look at the wrong cgroup.
func joinCgroups(pid, ref int) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/cgroup", ref))
	if err != nil {
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 || strings.Contains(parts[2], "..") {
			continue
		}
		var dir string
		switch ctrl := parts[1]; {
		case parts[0] == "0" && ctrl == "":
			dir = filepath.Join(unifiedRoot(), parts[2])
		case strings.HasPrefix(ctrl, "name="):
			dir = filepath.Join("/sys/fs/cgroup", strings.TrimPrefix(ctrl, "name="), parts[2])
		case ctrl != "":
			dir = filepath.Join("/sys/fs/cgroup", ctrl, parts[2])
		default:
			continue
		}
		_ = os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0o644)
	}
}

// unifiedRoot is the cgroup v2 mount: /sys/fs/cgroup on a unified host,
// /sys/fs/cgroup/unified on a hybrid one.
func unifiedRoot() string {
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		return "/sys/fs/cgroup"
	}
	return "/sys/fs/cgroup/unified"
}
