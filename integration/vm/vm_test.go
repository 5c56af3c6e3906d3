//go:build integration

// Package vm runs integration cases where nodes really are: Debian's kernel
// (hack/vm-kernel.sh) booted under qemu, with cgroup v2 and AppArmor, which
// this machine's kernel has not. TestVM packs an initramfs with the pinned
// tools (containerd, runc, runsc), the shim, its runsc wrapper, hardenctl,
// apparmor_parser, busybox and the integration test binary, boots it, runs
// the selected cases of package integration inside (the guest's own
// containerd through the same harness, HARDENED_IN_VM=1 so that the
// VM-only cases fail rather than skip), and turns what the guest printed
// into this test's result: one subtest per guest test, failing with the
// guest's output for it.
//
// The guest (its /init, written here): unpacks into a tmpfs and
// switch_roots into it (runc's pivot_root cannot leave an initramfs),
// mounts cgroup2 (nsdelegate) with every controller enabled, securityfs,
// loads overlayfs and the CNI modules, and runs the test binary on the
// serial console; the host reads the console. No network, no disk: all
// state is in the guest's memory and goes with it.
//
// Run with `make test-vm` (needs root only for qemu's reading of the
// payload's root-owned files; qemu runs without KVM, in software).
package vm

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hardened-dev/hardened/integration/harness"
)

// guestRun selects the cases of package integration the guest runs: the
// VM-only cases (vm_cases_test.go) and the host suite's cases whose
// outcome depends on cgroup v2 or AppArmor.
const guestRun = `^(TestVM.*|TestRestrictedByDefault|TestExecAsRestrictedAsInit|TestForkBombHeldByPidsLimit|TestGVisorAnnotation|TestPrivilegedRefused)$`

// guestRunCRI selects the cases of package integration/cri: a gVisor pod
// of two containers through containerd's CRI, and a runc pod.
const guestRunCRI = `^(TestCRIGVisorPod|TestCRIRestrictedPod)$`

// guestTimeout bounds the guest's test binary; qemuTimeout the whole VM.
const (
	guestTimeout = 30 * time.Minute
	qemuTimeout  = guestTimeout + 5*time.Minute
)

func TestVM(t *testing.T) {
	repo, err := harness.RepoRoot()
	if err != nil {
		skipOrFail(t, err)
	}
	tools := harness.ToolsBin(repo)
	if err := harness.CheckHost(tools); err != nil {
		skipOrFail(t, err)
	}
	kernel := filepath.Join(filepath.Dir(tools), "vm", "current")
	if v := os.Getenv("HARDENED_VM_KERNEL_DIR"); v != "" {
		kernel = v
	}
	if _, err := os.Stat(filepath.Join(kernel, "vmlinuz")); err != nil {
		skipOrFail(t, fmt.Errorf("%w: no kernel in %s (make tools runs hack/vm-kernel.sh)", harness.ErrUnavailable, kernel))
	}
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		skipOrFail(t, fmt.Errorf("%w: qemu-system-x86_64 missing (Debian package qemu-system-x86)", harness.ErrUnavailable))
	}
	if runtime.GOARCH != "amd64" {
		t.Skipf("SKIPPED: the guest is amd64, this is %s", runtime.GOARCH)
	}

	work := t.TempDir()
	root := filepath.Join(work, "root")
	start := time.Now()
	if err := buildPayload(repo, tools, kernel, root); err != nil {
		t.Fatal(err)
	}
	initrd := filepath.Join(work, "initrd.cpio")
	f, err := os.Create(initrd)
	if err != nil {
		t.Fatal(err)
	}
	if err := writeCpio(f, root); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(root); err != nil {
		t.Fatal(err)
	}
	version, _ := os.ReadFile(filepath.Join(kernel, "version"))
	t.Logf("initramfs built in %s; booting Debian kernel %s", time.Since(start).Round(time.Second), strings.TrimSpace(string(version)))

	ctx, cancel := context.WithTimeout(context.Background(), qemuTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, qemu, "-m", "4096", "-smp", strconv.Itoa(runtime.NumCPU()), "-nographic", "-no-reboot",
		"-kernel", filepath.Join(kernel, "vmlinuz"), "-initrd", initrd,
		"-append", "console=ttyS0 panic=-1 rdinit=/init quiet apparmor=1 security=apparmor cgroup_no_v1=all")
	console, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	logPath := filepath.Join(work, "console.log")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	res, readErr := readConsole(console, logPath)
	waitErr := cmd.Wait()
	t.Logf("VM ran %s (console: %s)", time.Since(start).Round(time.Second), logPath)
	if readErr != nil {
		t.Errorf("reading the console: %v", readErr)
	}
	for _, g := range res.tests {
		g := g
		t.Run(g.name, func(t *testing.T) {
			switch g.result {
			case "PASS":
				t.Logf("passed in the VM:\n%s", g.output)
			case "SKIP":
				t.Skipf("skipped in the VM:\n%s", g.output)
			default:
				t.Errorf("failed in the VM:\n%s", g.output)
			}
		})
	}
	switch {
	case res.exit == "":
		t.Errorf("the guest did not finish (qemu: %v); console tail:\n%s", waitErr, tail(logPath, 60))
	case res.exit != "0":
		t.Errorf("the guest's test binary exited %s; console tail:\n%s", res.exit, tail(logPath, 60))
	case len(res.tests) == 0:
		t.Errorf("the guest ran no test; console tail:\n%s", tail(logPath, 60))
	}
	if t.Failed() {
		keep := filepath.Join(os.TempDir(), "hardened-vm-console.log")
		if data, err := os.ReadFile(logPath); err == nil && os.WriteFile(keep, data, 0o644) == nil {
			t.Logf("console log kept at %s", keep)
		}
	}
}

func skipOrFail(t *testing.T, err error) {
	t.Helper()
	if harness.Required() {
		t.Fatal(err)
	}
	t.Skipf("SKIPPED: %v (set %s=1 to make this a failure)", err, harness.EnvRequire)
}

// guestTest is one top-level test of the guest: its result and output.
type guestTest struct {
	name, result, output string
}

type consoleResult struct {
	tests []guestTest
	exit  string
}

var (
	runLine    = regexp.MustCompile(`^=== RUN   (Test[^/\s]+)$`)
	resultLine = regexp.MustCompile(`^--- (PASS|FAIL|SKIP): (Test[^/\s]+) `)
	exitLine   = regexp.MustCompile(`^hardened-vm: exit (\d+)$`)
)

// readConsole copies the console to logPath and collects the guest's top
// level test results (go test -v output) and its exit line.
func readConsole(r io.Reader, logPath string) (consoleResult, error) {
	var res consoleResult
	log, err := os.Create(logPath)
	if err != nil {
		return res, err
	}
	defer log.Close()
	outputs := map[string]*strings.Builder{}
	current := ""
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		fmt.Fprintln(log, line)
		if m := runLine.FindStringSubmatch(line); m != nil {
			current = m[1]
			outputs[current] = &strings.Builder{}
		}
		if b := outputs[current]; b != nil && b.Len() < 64<<10 {
			b.WriteString(line + "\n")
		}
		if m := resultLine.FindStringSubmatch(line); m != nil {
			out := ""
			if b := outputs[m[2]]; b != nil {
				out = b.String()
			}
			res.tests = append(res.tests, guestTest{name: m[2], result: m[1], output: out})
		}
		if m := exitLine.FindStringSubmatch(line); m != nil {
			res.exit = m[1]
		}
	}
	return res, sc.Err()
}

func tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
