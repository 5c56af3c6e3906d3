package leakcheck

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// The tests inspect real processes: the test binary re-executed as a
// helper (helperEnv names its mode) that puts itself in the state to
// inspect, prints "ready <fd>" and waits for its stdin to close.
const (
	helperEnv        = "LEAKCHECK_HELPER"
	helperRootEnv    = "LEAKCHECK_ROOT"    // the directory to pivot or chroot into
	helperOutsideEnv = "LEAKCHECK_OUTSIDE" // a directory outside that root
)

func init() {
	// The helper changes its mount namespace, root and working directory
	// on the main thread: /proc/<pid>/{root,cwd} are the main thread's.
	// (init runs on the main thread; this keeps the main goroutine there.)
	if os.Getenv(helperEnv) != "" {
		runtime.LockOSThread()
	}
}

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		if err := runHelper(mode, os.Getenv(helperRootEnv), os.Getenv(helperOutsideEnv)); err != nil {
			fmt.Fprintf(os.Stderr, "leakcheck helper %s: %v\n", mode, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// held keeps the helper's descriptors referenced (no finaliser closes them).
var held []*os.File

// runHelper is the helper process: like runc init in the created state, it
// holds several close-on-exec descriptors besides stdio (a directory, a
// pipe, a socket pair, an O_PATH handle of a directory outside its root),
// then does what mode says.
func runHelper(mode, root, outside string) error {
	// What the test binary inherited from whoever ran `go test` (a shell's
	// descriptors, without O_CLOEXEC) is marked close-on-exec first, as
	// runc init's finalizeNamespace does.
	if err := unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err != nil {
		return err
	}
	if err := holdCloexecFDs(outside); err != nil {
		return err
	}
	leak := -1
	var err error
	switch mode {
	case "clean":
	case "leak":
		// Opened without O_CLOEXEC: it would survive exec.
		leak, err = unix.Open(outside, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	case "pivot":
		err = pivot(root, "")
	case "pivot-cwd-outside":
		err = pivot(root, outside)
	case "pivot-cwd-hostroot":
		// The host's view of the new root: same directory, other mount.
		err = pivot(root, root)
	case "chroot":
		err = chroot(root, "", "/")
	case "chroot-subdir":
		err = chroot(root, "", "/sub")
	case "chroot-cwd-outside":
		err = chroot(root, outside, "")
	default:
		err = fmt.Errorf("unknown mode")
	}
	if err != nil {
		return err
	}
	fmt.Printf("ready %d\n", leak)
	_, _ = io.Copy(io.Discard, os.Stdin)
	return nil
}

func holdCloexecFDs(outside string) error {
	dir, err := os.Open("/")
	if err != nil {
		return err
	}
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	sp, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	path, err := unix.Open(outside, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	held = append(held, dir, r, w, os.NewFile(uintptr(sp[0]), "sp0"), os.NewFile(uintptr(sp[1]), "sp1"), os.NewFile(uintptr(path), outside))
	return nil
}

// pivot does what runc does with a container's root: a private mount
// namespace, the root bind-mounted onto itself, pivot_root(".", "."), the
// old root detached. With cwdDir set, the working directory is then a
// directory opened before the pivot (on the old root's mounts).
func pivot(root, cwdDir string) error {
	out := -1
	if cwdDir != "" {
		fd, err := unix.Open(cwdDir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		out = fd
	}
	steps := []func() error{
		func() error { return unix.Unshare(unix.CLONE_NEWNS) },
		func() error { return unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, "") },
		func() error { return unix.Mount(root, root, "", unix.MS_BIND|unix.MS_REC, "") },
		func() error { return unix.Chdir(root) },
		func() error { return unix.PivotRoot(".", ".") },
		func() error { return unix.Unmount(".", unix.MNT_DETACH) },
		func() error { return unix.Chdir("/") },
	}
	for i, step := range steps {
		if err := step(); err != nil {
			return fmt.Errorf("pivot step %d: %w", i, err)
		}
	}
	if out >= 0 {
		return unix.Fchdir(out)
	}
	return nil
}

// chroot changes root to root, then the working directory to cwd (a path
// in the new root) or to outside (opened before the chroot).
func chroot(root, outside, cwd string) error {
	out := -1
	if outside != "" {
		fd, err := unix.Open(outside, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		out = fd
	}
	if err := unix.Unshare(unix.CLONE_FS); err != nil {
		return err
	}
	if err := unix.Chroot(root); err != nil {
		return err
	}
	if out >= 0 {
		return unix.Fchdir(out)
	}
	return unix.Chdir(cwd)
}

// helper is a running helper process.
type helper struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	// leak is the descriptor the "leak" mode opened without O_CLOEXEC.
	leak int
}

// startHelper runs the test binary as a helper in mode and waits until it
// is ready; the test's cleanup stops it.
func startHelper(tb testing.TB, mode, root, outside string) *helper {
	tb.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+mode, helperRootEnv+"="+root, helperOutsideEnv+"="+outside)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	h := &helper{cmd: cmd, stdin: stdin}
	tb.Cleanup(h.stop)
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		tb.Fatalf("helper %s did not get ready: %v", mode, err)
	}
	n, ok := strings.CutPrefix(strings.TrimSpace(line), "ready ")
	if h.leak, err = strconv.Atoi(n); !ok || err != nil {
		tb.Fatalf("helper %s: unexpected line %q", mode, line)
	}
	return h
}

func (h *helper) pid() int { return h.cmd.Process.Pid }

func (h *helper) stop() {
	h.stdin.Close()
	_ = h.cmd.Wait()
}

// needRoot skips tests that change mount namespaces and roots.
func needRoot(tb testing.TB) {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("needs root (mount namespace, pivot_root, chroot)")
	}
}
