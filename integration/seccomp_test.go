//go:build integration

package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/contrib/seccomp"
	"github.com/containerd/containerd/v2/pkg/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hardened-dev/hardened/integration/harness"
	"github.com/hardened-dev/hardened/internal/decide"
	"github.com/hardened-dev/hardened/internal/reports"
)

// denialScript calls two syscalls baseline's filter denies, each only by
// its default action (no rule names them without CAP_SYS_ADMIN and
// CAP_SYS_TIME): unshare(CLONE_NEWUSER), which an unprivileged process may
// otherwise make, and settimeofday, which the kernel refuses without
// CAP_SYS_TIME anyway. unshare prints its exit code, busybox's date its
// error (it exits 0 all the same).
const denialScript = `unshare -U true; echo "unshare=$?"; date -s 2020-01-01 >/dev/null`

// keptReport reads a container's kept report.
func (e *env) keptReport(id string) *decide.Report {
	e.t.Helper()
	r, err := reports.Read(e.d.ReportsDir(), e.ns, id)
	if err != nil {
		e.t.Fatalf("kept report of %s: %v", id, err)
	}
	return r
}

// noListenerLeft fails the test if a seccomp listener socket is left in
// the shim's run directory.
func (e *env) noListenerLeft() {
	e.t.Helper()
	dir := e.d.RunDir + "/containerd-hardened/seccomp"
	if ents, _ := os.ReadDir(dir); len(ents) > 0 {
		e.t.Errorf("seccomp listener sockets left in %s: %v", dir, ents)
	}
}

// denialOf is the report's denial of one of names (busybox's date -s sets
// the clock with settimeofday or clock_settime, as its libc has it).
func denialOf(r *decide.Report, names ...string) *decide.Denial {
	if r.Seccomp == nil {
		return nil
	}
	for i := range r.Seccomp.Denials {
		if slices.Contains(names, r.Seccomp.Denials[i].Syscall) {
			return &r.Seccomp.Denials[i]
		}
	}
	return nil
}

var setClock = []string{"settimeofday", "clock_settime", "stime"}

// TestSeccompDenialsReported: under seccomp_notify = "report" a program
// calling denied syscalls runs exactly as it does without the listener
// (same output: EPERM), and its kept report and `hardenctl report` name
// each syscall with its count, answer and executable.
func TestSeccompDenialsReported(t *testing.T) {
	e := newEnv(t)
	off := e.run(harness.Spec{ID: e.id("notify-off"), Runtime: harness.Hardened(e.policy("default_profile = \"baseline\"\n")),
		Args: sh(denialScript)})
	id := e.id("notify-report")
	on := e.run(harness.Spec{ID: id, Runtime: harness.Hardened(e.policy("default_profile = \"baseline\"\nseccomp_notify = \"report\"\n")),
		Args: sh(denialScript + "; unshare -U true 2>/dev/null; unshare -U true 2>/dev/null")})
	t.Logf("off: %s\non: %s", off.Output(), on.Output())
	if !strings.Contains(off.Stdout, "unshare=1") || !strings.Contains(off.Stderr, "can't set date: Operation not permitted") {
		t.Fatalf("without the listener the syscalls are not denied:\n%s", off.Output())
	}
	if off.Stdout != on.Stdout[:len(off.Stdout)] || off.Stderr != on.Stderr {
		t.Errorf("the workload sees a difference with the listener:\n--- off\n%s\n--- report\n%s", off.Output(), on.Output())
	}
	r := e.keptReport(id)
	if r.Seccomp == nil || r.Seccomp.Mode != "report" || r.Seccomp.Notified == 0 {
		t.Fatalf("report's seccomp section: %+v", r.Seccomp)
	}
	u, st := denialOf(r, "unshare"), denialOf(r, setClock...)
	switch {
	case u == nil || st == nil:
		t.Fatalf("denials %+v, want unshare and settimeofday", r.Seccomp.Denials)
	case u.Count != 3 || u.Answer != "EPERM" || u.Executable != "/bin/sh" || u.Arch != "amd64" && u.Arch != "x86_64":
		t.Errorf("unshare: %+v, want 3 denials answered EPERM, by /bin/sh (busybox sh runs its applets in process)", u)
	case st.Count != 1 || u.First.IsZero() || u.Last.Before(u.First):
		t.Errorf("settimeofday: %+v; unshare %+v", st, u)
	}
	out, err := exec.Command(suite.bins.CLI, "report", "--dir", e.d.ReportsDir(), id).CombinedOutput()
	if err != nil {
		t.Fatalf("hardenctl report: %v\n%s", err, out)
	}
	t.Logf("hardenctl report:\n%s", out)
	for _, want := range []string{"unshare", st.Syscall, "EPERM", "/bin/sh"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("hardenctl report does not show %q", want)
		}
	}
	e.noListenerLeft()
}

// TestSeccompLearn: under seccomp_notify = "learn" the denied syscalls run
// and are recorded; the profile learned, applied as the container's own
// (Localhost) filter under a profile that keeps the spec's filter, runs
// the program with no denial of what it learned, while what it did not
// learn stays denied and reported; and so does a profile hardenctl
// seccomp install makes of the record.
func TestSeccompLearn(t *testing.T) {
	e := newEnv(t)
	id := e.id("learn")
	res := e.run(harness.Spec{ID: id, Runtime: harness.Hardened(e.policy("default_profile = \"baseline\"\nseccomp_notify = \"learn\"\n")),
		Args: sh(`unshare -U true; echo "unshare=$?"`)})
	if !strings.Contains(res.Stdout, "unshare=0") {
		t.Fatalf("learn mode did not let unshare run:\n%s", res.Output())
	}
	r := e.keptReport(id)
	if d := denialOf(r, "unshare"); d == nil || d.Answer != "allowed" {
		t.Fatalf("learn mode's record: %+v", r.Seccomp)
	}
	learned, err := reports.LearnedPath(e.d.ReportsDir(), e.ns, id)
	if err != nil || r.Seccomp.Learned != learned {
		t.Fatalf("learned profile %q, want %q (%v)", r.Seccomp.Learned, learned, err)
	}
	data, err := os.ReadFile(learned)
	if err != nil {
		t.Fatal(err)
	}
	var sc specs.LinuxSeccomp
	if err := json.Unmarshal(data, &sc); err != nil {
		t.Fatalf("the learned profile is not an OCI seccomp filter: %v", err)
	}
	if sc.DefaultAction != specs.ActErrno || sc.ListenerPath != "" {
		t.Fatalf("learned profile: default %s, listener %q", sc.DefaultAction, sc.ListenerPath)
	}

	// Promote: a profile that keeps the workload's own filter (seccomp
	// base "") and the learned file as the container's Localhost profile.
	profDir := e.d.Dir + "/profiles"
	if err := os.MkdirAll(profDir, 0o755); err != nil {
		t.Fatal(err)
	}
	e.writeFile("profiles/learned.toml", "name = \"learned\"\nextends = \"baseline\"\nrank = 5\n[seccomp]\nbase = \"\"\n", 0o644)
	pol := e.policy("default_profile = \"learned\"\nminimum_profile = \"learned\"\nseccomp_notify = \"report\"\nprofiles_dir = \"" + profDir + "\"\n")
	again := e.id("learned")
	res = e.run(harness.Spec{ID: again, Runtime: harness.Hardened(pol), Args: sh(denialScript),
		SpecOpts: []oci.SpecOpts{seccomp.WithProfile(learned)}})
	if !strings.Contains(res.Stdout, "unshare=0") || !strings.Contains(res.Stderr, "can't set date: Operation not permitted") {
		t.Fatalf("under the learned profile:\n%s", res.Output())
	}
	r = e.keptReport(again)
	if denialOf(r, "unshare") != nil || denialOf(r, setClock...) == nil {
		t.Errorf("under the learned profile, denials %+v: want settimeofday and not unshare", r.Seccomp)
	}

	// Or promote it node-side: hardenctl seccomp install writes a profile
	// extending baseline with what the container needed (seccomp.allow),
	// and the workload runs under it with its own filter left alone.
	nodeDir := e.d.Dir + "/node-profiles"
	out, err := exec.Command(suite.bins.CLI, "seccomp", "install", "--name", "web", "--extends", "baseline",
		"--profiles-dir", nodeDir, "--dir", e.d.ReportsDir(), "--namespace", e.ns, id).CombinedOutput()
	if err != nil {
		t.Fatalf("hardenctl seccomp install: %v\n%s", err, out)
	}
	pol = e.policy("default_profile = \"web\"\nminimum_profile = \"web\"\nseccomp_notify = \"report\"\nprofiles_dir = \"" + nodeDir + "\"\n")
	third := e.id("installed")
	res = e.run(harness.Spec{ID: third, Runtime: harness.Hardened(pol), Args: sh(denialScript)})
	if !strings.Contains(res.Stdout, "unshare=0") || !strings.Contains(res.Stderr, "can't set date: Operation not permitted") {
		t.Fatalf("under the installed profile:\n%s", res.Output())
	}
	r = e.keptReport(third)
	if r.Profile != "web" || denialOf(r, "unshare") != nil || denialOf(r, setClock...) == nil {
		t.Errorf("under the installed profile %s, denials %+v: want the clock call and not unshare", r.Profile, r.Seccomp)
	}
}

// TestSeccompListenerDeath: when the shim dies with a denied syscall
// pending, the kernel fails that call and every later one closed (ENOSYS)
// and the container keeps running. containerd is stopped (SIGSTOP) for the
// test so that it does not clean up after the dead shim at once (which
// kills the container); it resumes and does so at the end.
func TestSeccompListenerDeath(t *testing.T) {
	e := newEnv(t)
	c := e.start(harness.Spec{ID: e.id("listener-death"), Runtime: harness.Hardened(e.policy("default_profile = \"baseline\"\nseccomp_notify = \"report\"\n")),
		Args: sh(`exec >/out 2>&1; while [ ! -e /go ]; do sleep 0.05; done; unshare -U true; echo "rc=$?"; unshare -U true; echo "rc2=$?"; touch /done; sleep 600`)})
	pid := int(c.Pid())
	root := fmt.Sprintf("/proc/%d/root", pid)
	shimPid := harness.ParentPid(pid)
	if shimPid <= 1 {
		t.Fatalf("no shim above the container's init %d", pid)
	}
	stopped := []int{e.d.Pid(), shimPid}
	for _, p := range stopped {
		if err := syscall.Kill(p, syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
	}
	defer func() { _ = syscall.Kill(e.d.Pid(), syscall.SIGCONT) }()
	if err := os.WriteFile(root+"/go", nil, 0o644); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	if out, _ := os.ReadFile(root + "/out"); strings.Contains(string(out), "rc=") {
		t.Fatalf("the denied call did not wait for the stopped listener:\n%s", out)
	}
	if err := syscall.Kill(shimPid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(root + "/done"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			out, _ := os.ReadFile(root + "/out")
			t.Fatalf("the container did not go on after the shim died:\n%s", out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	out, _ := os.ReadFile(root + "/out")
	t.Logf("container after the shim died:\n%s", out)
	if strings.Count(string(out), "Function not implemented") != 2 || !strings.Contains(string(out), "rc=1") || !strings.Contains(string(out), "rc2=1") {
		t.Errorf("want both calls failed with ENOSYS:\n%s", out)
	}
	if err := syscall.Kill(pid, 0); err != nil {
		t.Errorf("the container's init is gone: %v", err)
	}
	// containerd resumes and cleans up after the dead shim: the container
	// is killed and deleted by the shim binary's delete command.
	if err := syscall.Kill(e.d.Pid(), syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		var cleaning []string
		for _, p := range harness.ProcessesNaming(e.d.Dir) {
			if strings.Contains(p, c.ID) {
				cleaning = append(cleaning, p)
			}
		}
		if syscall.Kill(pid, 0) != nil && len(cleaning) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("containerd did not clean up after the dead shim: init %d, %v", pid, cleaning)
		}
	}
	e.noListenerLeft()
}
