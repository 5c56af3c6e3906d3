package runscwrap

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestMain lets the test binary act as the wrapper when a test runs it
// through a hardened-runsc symlink.
func TestMain(m *testing.M) {
	if IsWrapper(os.Args[0]) {
		Main()
	}
	os.Exit(m.Run())
}

// wrapperDir sets up what the shim does for a runsc configuration: a
// directory with ConfigFile and a symlink named Name to the wrapper (here,
// this test binary). It returns the symlink.
func wrapperDir(t *testing.T, cfg Config) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	data, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ConfigFile), data, 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, Name)
	if err := os.Symlink(exe, link); err != nil {
		t.Fatal(err)
	}
	return link
}

func TestRunscArgv(t *testing.T) {
	goRunc := []string{"--root", "/run/containerd/runsc/k8s.io", "--log", "/b/log.json", "--log-format", "json", "create", "--bundle", "/b", "--pid-file", "/b/init.pid", "c1"}
	for _, tc := range []struct {
		name string
		cfg  Config
		want []string
	}{
		{
			name: "no policy args",
			cfg:  Config{Path: "/usr/bin/runsc"},
			want: append([]string{"/usr/bin/runsc", "--oci-seccomp"}, goRunc...),
		},
		{
			name: "policy args go before go-runc's",
			cfg:  Config{Path: "/usr/bin/runsc", Args: []string{"--platform=systrap", "--network", "sandbox"}},
			want: append([]string{"/usr/bin/runsc", "--oci-seccomp", "--platform=systrap", "--network", "sandbox"}, goRunc...),
		},
		{
			name: "oci-seccomp not repeated",
			cfg:  Config{Path: "/usr/bin/runsc", Args: []string{"--oci-seccomp"}},
			want: append([]string{"/usr/bin/runsc", "--oci-seccomp"}, goRunc...),
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := runscArgv(tc.cfg, goRunc); !slices.Equal(got, tc.want) {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}

func subcommand(args []string) string {
	sub, _ := splitSubcommand(args)
	return sub
}

func TestSubcommand(t *testing.T) {
	for args, want := range map[string]string{
		"--root /r --log /l --log-format json start c1":                               "start",
		"--root /r --log /l --log-format json --systemd-cgroup create --bundle /b c1": "create",
		"--root=/start --debug state c1":                                              "state",
		"--root start delete c1":                                                      "delete", // "start" is --root's value
		"--rootless=false kill c1 9":                                                  "kill",
		"":                                                                            "",
	} {
		if got := subcommand(strings.Fields(args)); got != want {
			t.Errorf("%q: %q, want %q", args, got, want)
		}
	}
}

func TestCheckRunscArgs(t *testing.T) {
	for _, ok := range [][]string{nil, {"--oci-seccomp"}, {"--oci-seccomp=true"}, {"--network=none", "--platform=ptrace"}} {
		if err := CheckArgs(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range [][]string{{"--oci-seccomp=false"}, {"-oci-seccomp=0"}, {"--network=none", "--oci-seccomp=f"}} {
		if err := CheckArgs(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// fakeRunsc writes a runsc stand-in that prints its pid and arguments, and
// for `start` leaves a child behind holding its stdout, like runsc's gofer.
func fakeRunsc(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "runsc")
	script := `#!/bin/sh
echo "pid=$$ args=$*"
echo "runsc-stderr" >&2
for a in "$@"; do
  if [ "$a" = start ]; then
    sleep 30 &
    echo $! > "` + dir + `/child.pid"
    exit 3
  fi
done
exit 0
`
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func wrapperFor(t *testing.T, runsc string, args ...string) string {
	t.Helper()
	return wrapperDir(t, Config{Path: runsc, Args: args})
}

func TestRunscWrapperStartDoesNotHang(t *testing.T) {
	dir := t.TempDir()
	link := wrapperFor(t, fakeRunsc(t, dir), "--network=none")
	t.Cleanup(func() {
		if b, err := os.ReadFile(filepath.Join(dir, "child.pid")); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})

	// What go-runc does for `start`: read stdout+stderr through a pipe
	// until EOF.
	cmd := exec.Command(link, "--root", "/r", "--log", "/l", "--log-format", "json", "start", "c1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	done := make(chan error, 1)
	begin := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("start through the wrapper hangs: runsc's child holds go-runc's pipe")
	}
	if d := time.Since(begin); d > 5*time.Second {
		t.Errorf("start took %v", d)
	}
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) || exitErr.ExitCode() != 3 {
		t.Errorf("exit %v, want runsc's status 3", err)
	}
	got := out.String()
	if !strings.Contains(got, "args=--oci-seccomp --network=none --root /r --log /l --log-format json start c1") {
		t.Errorf("runsc's output not relayed or args wrong: %q", got)
	}
	if !strings.Contains(got, "runsc-stderr") {
		t.Errorf("runsc's stderr not relayed: %q", got)
	}
}

func TestRunscWrapperExecsStartOfTheShimsContainer(t *testing.T) {
	// The shim runs in the bundle of the container it was started for,
	// runsc's root container: its start leaves no process behind and is
	// exec'd (same pid, the caller's stdout).
	dir := t.TempDir()
	link := wrapperFor(t, fakeRunsc(t, dir))
	t.Cleanup(func() {
		if b, err := os.ReadFile(filepath.Join(dir, "child.pid")); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	bundle := filepath.Join(t.TempDir(), "c1")
	if err := os.Mkdir(bundle, 0o755); err != nil {
		t.Fatal(err)
	}
	// A file, not a pipe: the fake's child holds what it is given.
	outPath := filepath.Join(t.TempDir(), "out")
	outFile, err := os.Create(outPath)
	if err != nil {
		t.Fatal(err)
	}
	defer outFile.Close()
	cmd := exec.Command(link, "--root", "/r", "start", "c1")
	cmd.Dir = bundle
	cmd.Stdout = outFile
	err = cmd.Run()
	out, _ := os.ReadFile(outPath)
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) || exitErr.ExitCode() != 3 {
		t.Fatalf("exit %v, want runsc's status 3: %s", err, out)
	}
	want := "pid=" + strconv.Itoa(cmd.Process.Pid) + " args=--oci-seccomp --root /r start c1"
	if got := strings.TrimSpace(string(out)); got != want {
		t.Errorf("got %q, want %q (exec'd)", got, want)
	}
}

func TestRunscWrapperExecsOtherSubcommands(t *testing.T) {
	link := wrapperFor(t, fakeRunsc(t, t.TempDir()))
	cmd := exec.Command(link, "--root", "/r", "state", "c1")
	var out bytes.Buffer
	cmd.Stdout = &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	// execve: runsc has the pid the caller started, and the caller's
	// stdout directly.
	want := "pid=" + strconv.Itoa(cmd.Process.Pid) + " args=--oci-seccomp --root /r state c1"
	if got := strings.TrimSpace(out.String()); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestRunscWrapperWithoutConfig(t *testing.T) {
	dir := t.TempDir()
	exe, _ := os.Executable()
	link := filepath.Join(dir, Name)
	if err := os.Symlink(exe, link); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(link, "state", "c1").CombinedOutput()
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) || exitErr.ExitCode() != 127 || !strings.Contains(string(out), ConfigFile) {
		t.Errorf("err %v, output %q: want a failure naming %s", err, out, ConfigFile)
	}
}

// fakeRunscPod is a runsc stand-in for a pod: `create` starts a "sandbox"
// process and writes its pid (as runsc does for every container of a
// pod), `wait` blocks until dir/exit exists and reports status 137,
// `state` says running.
func fakeRunscPod(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "runsc")
	script := `#!/bin/sh
sub=""; pidfile=""; prev=""
for a in "$@"; do
  [ "$prev" = "--pid-file" ] && pidfile="$a"
  case "$a" in create|start|wait|state|delete) [ -z "$sub" ] && sub="$a";; esac
  prev="$a"
done
echo "$*" >> "` + dir + `/calls"
case "$sub" in
create)
  sleep 300 </dev/null >/dev/null 2>&1 &
  echo $! > "` + dir + `/sandbox.pid"
  echo $! > "$pidfile"
  ;;
start)
  # runsc hands start's stdio to the app container.
  echo container-out; echo container-err >&2
  ;;
wait)
  while [ ! -e "` + dir + `/exit" ]; do sleep 0.05; done
  echo '{"id":"c1","exitStatus":137}'
  ;;
state)
  echo '{"status":"running"}'
  ;;
esac
`
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if pid, err := readPid(filepath.Join(dir, "sandbox.pid")); err == nil {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	return path
}

func podBundle(t *testing.T, kind string) string {
	t.Helper()
	b := t.TempDir()
	spec := `{"ociVersion":"1.2.0","annotations":{"io.kubernetes.cri.container-type":"` + kind + `","io.kubernetes.cri.sandbox-id":"sb"}}`
	if err := os.WriteFile(filepath.Join(b, "config.json"), []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRunscWrapperSubcontainerExit(t *testing.T) {
	// Be what the shim is: the subreaper the waiter is reparented to.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		t.Skipf("cannot become a subreaper: %v", err)
	}
	t.Cleanup(func() { _ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0) })

	dir := t.TempDir()
	link := wrapperFor(t, fakeRunscPod(t, dir))
	pidFile := filepath.Join(t.TempDir(), "init.pid")
	// The container's stdio, as go-runc hands it to create (the shim's IO).
	ctrOut, ctrErr := tempFile(t), tempFile(t)
	create := exec.Command(link, "--root", "/r", "--log", "/l", "--log-format", "json",
		"create", "--bundle", podBundle(t, "container"), "--pid-file", pidFile, "c1")
	create.Stdout, create.Stderr = ctrOut, ctrErr
	if err := create.Run(); err != nil {
		t.Fatalf("create: %v", err)
	}
	waiter, err := readPid(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	sandbox, _ := readPid(filepath.Join(dir, "sandbox.pid"))
	if waiter == sandbox {
		t.Fatal("pid file holds the sandbox's pid: the shim would never see this container exit")
	}
	t.Cleanup(func() { _ = syscall.Kill(waiter, syscall.SIGKILL) })
	if cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", waiter)); !bytes.Contains(cmdline, []byte(waitFlag)) {
		t.Errorf("pid %d is not the waiter: %q", waiter, cmdline)
	}

	// start: runsc gets the container's stdio (the waiter's), not go-runc's
	// pipe, which the running container would hold open.
	out, err := exec.Command(link, "--root", "/r", "--log", "/l", "--log-format", "json", "start", "c1").CombinedOutput()
	if err != nil || strings.Contains(string(out), "container-") {
		t.Errorf("start: %v, output %q: want success, the container's output elsewhere", err, out)
	}
	for f, want := range map[*os.File]string{ctrOut: "container-out\n", ctrErr: "container-err\n"} {
		if got, _ := os.ReadFile(f.Name()); string(got) != want {
			t.Errorf("%s holds %q, want %q", f.Name(), got, want)
		}
	}

	// The container exits (runsc wait returns): so does the waiter, with
	// the container's status. (The waiter is a real process: the pause
	// gives a wrong early exit the time to show; nothing fakes it.)
	time.Sleep(100 * time.Millisecond)
	var ws syscall.WaitStatus
	if pid, _ := syscall.Wait4(waiter, &ws, syscall.WNOHANG, nil); pid != 0 {
		t.Fatalf("waiter exited before the container (status %v)", ws)
	}
	if err := os.WriteFile(filepath.Join(dir, "exit"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := syscall.Wait4(waiter, &ws, 0, nil)
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("waiter did not exit after the container did")
	}
	if !ws.Exited() || ws.ExitStatus() != 137 {
		t.Errorf("waiter status %v, want exit 137 (the container's)", ws)
	}
	calls, _ := os.ReadFile(filepath.Join(dir, "calls"))
	if !strings.Contains(string(calls), "--oci-seccomp --root /r --log /l --log-format json wait c1") {
		t.Errorf("runsc calls:\n%s", calls)
	}
	if _, err := os.Stat(waiterRecord(link, waiterKey([]string{"--root", "/r"}, "c1"))); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the waiter's record outlived it: %v", err)
	}
}

func tempFile(t *testing.T) *os.File {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "stdio")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() })
	return f
}

func TestRunscWrapperSandboxCreateKeepsPid(t *testing.T) {
	dir := t.TempDir()
	link := wrapperFor(t, fakeRunscPod(t, dir))
	pidFile := filepath.Join(t.TempDir(), "init.pid")
	out, err := exec.Command(link, "--root", "/r", "create", "--bundle", podBundle(t, "sandbox"), "--pid-file", pidFile, "sb").CombinedOutput()
	if err != nil {
		t.Fatalf("create: %v: %s", err, out)
	}
	got, _ := readPid(pidFile)
	sandbox, _ := readPid(filepath.Join(dir, "sandbox.pid"))
	if got != sandbox {
		t.Errorf("pod sandbox pid file %d, want runsc's %d", got, sandbox)
	}
}

func TestRunscWrapperKillOfStoppedContainer(t *testing.T) {
	dir := t.TempDir()
	runsc := filepath.Join(dir, "runsc")
	script := `#!/bin/sh
for a in "$@"; do
  case "$a" in
  gone) echo "sandbox is not running" >&2; exit 128;;
  broken) echo "permission denied" >&2; exit 1;;
  esac
done
exit 0
`
	if err := os.WriteFile(runsc, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	link := wrapperFor(t, runsc)
	for _, tc := range []struct {
		id     string
		code   int
		notRun bool
	}{
		{"live", 0, false},
		{"gone", 128, true},  // runc's words, so the shim reads "already exited"
		{"broken", 1, false}, // a real failure stays one
	} {
		out, err := exec.Command(link, "--root", "/r", "kill", "--all", tc.id, "9").CombinedOutput()
		code := 0
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) {
			code = exitErr.ExitCode()
		}
		if code != tc.code || strings.Contains(string(out), "container not running") != tc.notRun {
			t.Errorf("%s: exit %d output %q", tc.id, code, out)
		}
	}
}

// TestImportsStaySmall keeps the wrapper binary what it is for: go-runc
// runs it for every runsc call, and each package it links adds to every
// one of them (the shim's own binary spent ~6 ms per call in package
// initialisation). The standard library and x/sys only.
func TestImportsStaySmall(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go in PATH")
	}
	out, err := exec.Command(goBin, "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}",
		"github.com/hardened-dev/hardened/cmd/hardened-runsc").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, p := range strings.Fields(string(out)) {
		switch {
		case p == "github.com/hardened-dev/hardened/cmd/hardened-runsc",
			p == "github.com/hardened-dev/hardened/shim/runscwrap",
			p == "github.com/hardened-dev/hardened/internal/atomicfile", // standard library only
			p == "github.com/hardened-dev/hardened/internal/version",    // standard library only
			strings.HasPrefix(p, "golang.org/x/sys/"):
		default:
			t.Errorf("the runsc wrapper links %s", p)
		}
	}
}

// fakeRunscLifecycle is a runsc stand-in that answers `wait` and `state`
// as runsc does for a pod's app container: wait fails ("not started")
// until dir/started exists, then blocks until dir/exit exists and prints
// the status it holds; state runs the script's scenario (stateScript),
// which may start and end the container, and prints the status.
func fakeRunscLifecycle(t *testing.T, dir, stateScript string) string {
	t.Helper()
	path := filepath.Join(dir, "runsc")
	script := `#!/bin/sh
d="` + dir + `"
sub=""
for a in "$@"; do
  case "$a" in wait|state) [ -z "$sub" ] && sub="$a";; esac
done
echo "$sub" >> "$d/calls"
case "$sub" in
wait)
  if [ ! -e "$d/started" ]; then echo 'waiting for container: container "c1" not started' >&2; exit 128; fi
  while [ ! -e "$d/exit" ]; do sleep 0.01; done
  echo "{\"id\":\"c1\",\"exitStatus\":$(cat "$d/exit")}"
  ;;
state)
  n=$(grep -c state "$d/calls")
` + stateScript + `
  ;;
esac
`
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestWaiterContainerExitedBeforeState: the waiter's first `runsc wait`
// comes before the container's start (refused: not started); by its
// `runsc state` the container has started and exited ("stopped"). runsc
// keeps the exit status until delete, so the waiter must report it, not
// 255. (Seen through CRI on hardened-gvisor: `sh -c "exit 0"` reported as
// exited 255 about once in 15 runs.)
func TestWaiterContainerExitedBeforeState(t *testing.T) {
	for _, tc := range []struct {
		name, state string
		want        int
		maxCalls    int // runsc calls at most
	}{
		{"exit 0 between wait and state", `touch "$d/started"; echo 0 > "$d/exit"; echo '{"status":"stopped"}'`, 0, 3},
		{"exit 3 between wait and state", `touch "$d/started"; echo 3 > "$d/exit"; echo '{"status":"stopped"}'`, 3, 3},
		{"killed between wait and state", `touch "$d/started"; echo 137 > "$d/exit"; echo '{"status":"stopped"}'`, 137, 3},
		// Started after a few polls, exits at once: reported without the
		// 1 s pause a created container's retry used to take.
		{"created, then started", `if [ "$n" -lt 4 ]; then echo '{"status":"created"}'; else touch "$d/started"; echo 0 > "$d/exit"; echo '{"status":"running"}'; fi`, 0, 9},
		// A container runsc marks stopped that never ran (its start
		// failed): wait keeps refusing it; 255, promptly.
		{"stopped without a status", `echo '{"status":"stopped"}'`, 255, 4},
		{"gone", `echo 'loading container: file does not exist' >&2; exit 128`, 255, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			runsc := fakeRunscLifecycle(t, dir, tc.state)
			var stderr bytes.Buffer
			t0 := time.Now()
			got := runWaiter(filepath.Join(dir, Name), Config{Path: runsc}, []string{"--root", "/r", "c1"}, &stderr)
			took := time.Since(t0)
			calls, _ := os.ReadFile(filepath.Join(dir, "calls"))
			if got != tc.want {
				t.Errorf("waiter status %d, want %d (runsc calls: %q, stderr %q)", got, tc.want, calls, stderr.String())
			}
			if n := len(strings.Fields(string(calls))); n > tc.maxCalls {
				t.Errorf("%d runsc calls, want at most %d: %q", n, tc.maxCalls, calls)
			}
			if took > 2*time.Second {
				t.Errorf("waiter took %s", took)
			}
		})
	}
}

// TestRunscWrapperTerminalSubcontainer: with a terminal (a console
// socket) go-runc reads create's output through a pipe of its own; the
// waiter must not hold it (create would not return before the container
// exits), and keeps no stdio for start.
func TestRunscWrapperTerminalSubcontainer(t *testing.T) {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		t.Skipf("cannot become a subreaper: %v", err)
	}
	t.Cleanup(func() { _ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0) })
	dir := t.TempDir()
	link := wrapperFor(t, fakeRunscPod(t, dir))
	// The container "exits" at the end: the waiter's `runsc wait` returns
	// and the waiter with it.
	t.Cleanup(func() { _ = os.WriteFile(filepath.Join(dir, "exit"), nil, 0o644) })
	pidFile := filepath.Join(t.TempDir(), "init.pid")
	create := exec.Command(link, "--root", "/r", "create", "--bundle", podBundle(t, "container"),
		"--console-socket", filepath.Join(dir, "console.sock"), "--pid-file", pidFile, "c1")
	done := make(chan error, 1)
	go func() {
		out, err := create.CombinedOutput()
		if err != nil {
			err = fmt.Errorf("%w: %s", err, out)
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("create: %v", err)
		}
	case <-time.After(10 * time.Second):
		_ = create.Process.Kill()
		t.Fatal("create did not return: its output pipe is held open (by the waiter?)")
	}
	waiter, err := readPid(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(waiterRecord(link, waiterKey([]string{"--root", "/r"}, "c1"))); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a waiter record for a container with a terminal: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "exit"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	var ws syscall.WaitStatus
	if _, err := syscall.Wait4(waiter, &ws, 0, nil); err != nil || ws.ExitStatus() != 137 {
		t.Errorf("waiter: %v, status %v: want exit 137 (the container's)", err, ws)
	}
}
