package leakcheck

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// dirs returns a directory to use as a root (with a subdirectory "sub")
// and one outside it.
func dirs(t testing.TB) (root, outside string) {
	t.Helper()
	base := t.TempDir()
	root, outside = filepath.Join(base, "root"), filepath.Join(base, "outside")
	for _, d := range []string{filepath.Join(root, "sub"), outside} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return root, outside
}

func inspect(t *testing.T, pid int, want Expect) []Finding {
	t.Helper()
	p, err := Open(pid)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	found, err := p.Inspect(want)
	if err != nil {
		t.Fatal(err)
	}
	return found
}

func kinds(found []Finding) string {
	var s []string
	for _, f := range found {
		s = append(s, string(f.Kind))
	}
	return strings.Join(s, ",")
}

func TestInspect(t *testing.T) {
	for _, tc := range []struct {
		name, mode string
		// wantRoot: Expect.Root is the test's root directory, else "/".
		wantRoot bool
		root     bool // needs root
		want     string
	}{
		// Stdio and close-on-exec descriptors only, root and cwd on the host.
		{name: "clean", mode: "clean", want: ""},
		// After a pivot_root like runc's, ".." from the container's "/"
		// stays there: the walk meets the root.
		{name: "pivot", mode: "pivot", wantRoot: true, root: true, want: ""},
		// A pivoted process compared with another root.
		{name: "pivot-other-root", mode: "pivot", root: true, want: "root"},
		// The working directory on the old root's mounts (detached).
		{name: "pivot-cwd-outside", mode: "pivot-cwd-outside", wantRoot: true, root: true, want: "cwd"},
		// The host's view of the root directory: same device and inode as
		// the root, another mount; ".." leads out of it.
		{name: "pivot-cwd-hostroot", mode: "pivot-cwd-hostroot", wantRoot: true, root: true, want: "cwd"},
		// After a plain chroot, ".." climbs past the root: met on the way.
		{name: "chroot", mode: "chroot", wantRoot: true, root: true, want: ""},
		{name: "chroot-subdir", mode: "chroot-subdir", wantRoot: true, root: true, want: ""},
		{name: "chroot-cwd-outside", mode: "chroot-cwd-outside", wantRoot: true, root: true, want: "cwd"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.root {
				needRoot(t)
			}
			root, outside := dirs(t)
			h := startHelper(t, tc.mode, root, outside)
			want := Expect{Root: "/"}
			if tc.wantRoot {
				want.Root = root
			}
			found := inspect(t, h.pid(), want)
			if got := kinds(found); got != tc.want {
				t.Fatalf("findings %v, want kinds %q", found, tc.want)
			}
			for _, f := range found {
				if f.Kind == KindCwd && f.Target == "" {
					t.Errorf("cwd finding names no directory: %v", f)
				}
			}
		})
	}
}

func TestInspectLeakedFD(t *testing.T) {
	root, outside := dirs(t)
	h := startHelper(t, "leak", root, outside)
	found := inspect(t, h.pid(), Expect{Root: "/"})
	if len(found) != 1 || found[0].Kind != KindFD || found[0].FD != h.leak || found[0].Target != outside {
		t.Fatalf("findings %v, want fd %d -> %s only", found, h.leak, outside)
	}
	msg := found[0].String()
	for _, w := range []string{"fd " + strconv.Itoa(h.leak), outside, "O_CLOEXEC"} {
		if !strings.Contains(msg, w) {
			t.Errorf("%q does not name %q", msg, w)
		}
	}
	// Preserved up to the leaked descriptor (--preserve-fds): allowed.
	if found := inspect(t, h.pid(), Expect{Root: "/", Preserved: h.leak - 2}); len(found) != 0 {
		t.Errorf("with %d preserved: findings %v, want none", h.leak-2, found)
	}
}

func TestKill(t *testing.T) {
	_, outside := dirs(t)
	h := startHelper(t, "clean", "", outside)
	p, err := Open(h.pid())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.Kill(); err != nil {
		t.Fatal(err)
	}
	err = h.cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("helper ended with %v, want SIGKILL", err)
	}
	// Reaped: the pidfd names a process that is gone.
	if _, err := p.Inspect(Expect{}); err == nil {
		t.Error("Inspect of a reaped process succeeded")
	}
}

func TestOpenInvalid(t *testing.T) {
	if _, err := Open(0); err == nil {
		t.Error("Open(0) succeeded")
	}
}

func TestParseFlags(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want uint64
		err  bool
	}{
		{in: "pos:\t0\nflags:\t02100002\nmnt_id:\t27\nino:\t5\n", want: 0o2100002},
		{in: "pos:\t0\nflags:\t0100002\n", want: 0o100002},
		{in: "pos:\t123456789012\nflags:\t012400000\n", want: 0o12400000},
		{in: "pos:\t0\n", err: true},
		{in: "flags:\t09\n", err: true},
		{in: "", err: true},
	} {
		got, err := parseFlags(tc.in)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("parseFlags(%q) = %o, %v; want %o, error %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}

func FuzzParseFlags(f *testing.F) {
	f.Add("pos:\t0\nflags:\t02100002\nmnt_id:\t27\n")
	f.Add("flags:\t0\n")
	f.Add("flags: 777777777777777777777777\n")
	f.Fuzz(func(t *testing.T, s string) {
		_, _ = parseFlags(s)
	})
}
