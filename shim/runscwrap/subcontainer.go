package runscwrap

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

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
	// No stdio: the container's IO pipes must not be held open by it.
	waiter.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := waiter.Start(); err != nil {
		return fail(fmt.Errorf("failed to start the exit waiter: %w", err))
	}
	joinCgroups(waiter.Process.Pid, sandboxPid)
	if err := atomicfile.Write(pidFile, []byte(strconv.Itoa(waiter.Process.Pid)), 0o644); err != nil {
		_ = waiter.Process.Kill()
		return fail(err)
	}
	_ = waiter.Process.Release()
	return 0
}

// waitRetry bounds how long a waiter retries a failing `runsc wait` while
// the container still exists.
const waitRetry = time.Second

// runWaiter waits for a subcontainer with `runsc wait` and exits with its
// status (128+signal for a killed one, as the shim computes it for runc's
// init). A failing wait is retried while `runsc state` says the container
// still runs: reporting an exit for a live container would be worse than
// waiting.
func runWaiter(cfg Config, args []string, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintf(stderr, "%s: %s needs a container id\n", Name, waitFlag)
		return 255
	}
	globals, id := args[:len(args)-1], args[len(args)-1]
	run := func(sub ...string) ([]byte, error) {
		argv := runscArgv(cfg, append(append(append([]string{}, globals...), sub...), id))
		return exec.Command(argv[0], argv[1:]...).Output()
	}
	for {
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
		if serr != nil || json.Unmarshal(state, &st) != nil || (st.Status != "running" && st.Status != "created" && st.Status != "paused") {
			return 255
		}
		time.Sleep(waitRetry)
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
