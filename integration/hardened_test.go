//go:build integration

package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/oci"

	"github.com/hardened-dev/hardened/integration/harness"
)

const readyTimeout = 60 * time.Second

// assertShimRefusal checks that err is the hardened shim refusing (not runc
// failing on the same spec later) and that it names what it must.
func assertShimRefusal(t testing.TB, what string, err error, names ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: accepted, want the hardened shim to refuse it", what)
	}
	low := strings.ToLower(err.Error())
	if !strings.Contains(low, "hardened") && !strings.Contains(low, strings.ToLower(refusedText)) {
		t.Errorf("%s: the error does not come from the hardened shim (neither %q nor \"hardened\" in it):\n%v", what, refusedText, err)
	}
	for _, marker := range []string{"oci runtime create failed", "runc create failed", "oci runtime exec failed", "runc exec failed"} {
		if strings.Contains(low, marker) {
			t.Errorf("%s: refused by the OCI runtime (%q), want the shim to refuse it before running the runtime:\n%v", what, marker, err)
		}
	}
	errContainsAll(t, what, err, names...)
}

// TestRestrictedByDefault: with no annotation, label or policy file the
// container gets the hardened profile, as the kernel reports it.
func TestRestrictedByDefault(t *testing.T) {
	e := newEnv(t)
	id := e.id("hardened")
	c := e.start(harness.Spec{ID: id, Runtime: harness.Hardened(""), Args: sh(harness.Script(
		[2]string{"status", "cat /proc/self/status"},
		[2]string{"rootfs", "touch /x && echo ROOTFS-WRITABLE"},
		[2]string{"tmp", "echo scratch > /tmp/probe && cat /tmp/probe"},
		[2]string{"run", "echo scratch > /run/probe && cat /run/probe"},
		[2]string{"mounts", "cat /proc/self/mountinfo"},
	) + "echo READY; exec sleep 600")})
	if err := c.WaitOutput(e.ctx, "READY", readyTimeout); err != nil {
		t.Fatalf("hardened container: %v", err)
	}
	out, _ := c.Output()
	sec := harness.Sections(out)
	t.Logf("init status:\n%s", sec["status"])

	assertRestricted(t, "init", statusOf(t, "init", sec["status"]))
	if !strings.Contains(sec["rootfs"], "Read-only file system") || strings.Contains(sec["rootfs"], "ROOTFS-WRITABLE") {
		t.Errorf("touch /x: want it to fail with \"Read-only file system\", got:\n%s", sec["rootfs"])
	}
	for _, dir := range []string{"tmp", "run"} {
		if strings.TrimSpace(sec[dir]) != "scratch" {
			t.Errorf("/%s: want a writable scratch tmpfs, writing to it gave:\n%s", dir, sec[dir])
		}
	}
	if !regexp.MustCompile(`(?m) /tmp .* - tmpfs `).MatchString(sec["mounts"]) {
		t.Errorf("/tmp is not a tmpfs mount; mountinfo:\n%s", sec["mounts"])
	}

	// fd hygiene of the init process: list /proc/1/fd from an exec (the
	// init is `sleep` by now), so that the listing's own fds do not count.
	res, err := c.Exec(e.ctx, harness.Exec{Args: []string{"ls", "-l", "/proc/1/fd"}})
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("exec ls -l /proc/1/fd: %v\n%s", err, res.Output())
	}
	assertStdioOnly(t, "init process", openFds(res.Stdout), res.Stdout)

	// Masked paths: the files containerd masks (and every profile keeps
	// masked) read empty; only those this kernel has are checked. Under
	// AppArmor (make test-vm) hardened-default also denies reading some
	// of them (/proc/kcore): not readable either way.
	for _, p := range []string{"/proc/timer_list", "/proc/kcore", "/proc/sched_debug", "/proc/latency_stats", "/proc/timer_stats"} {
		if _, err := os.Stat(p); err != nil {
			continue
		}
		res, err := c.Exec(e.ctx, harness.Exec{Args: sh("wc -c < " + p)})
		if err != nil {
			t.Fatalf("exec to read %s: %v", p, err)
		}
		denied := appArmorOn() && res.ExitCode != 0 && strings.Contains(res.Stderr, "Permission denied")
		if strings.TrimSpace(res.Stdout) != "0" && !denied {
			t.Errorf("masked path %s: read %q bytes, want it masked (empty):\n%s", p, strings.TrimSpace(res.Stdout), res.Output())
		}
	}
	res, err = c.Exec(e.ctx, harness.Exec{Args: sh("ls -A /sys/firmware | wc -l")})
	if err != nil || strings.TrimSpace(res.Stdout) != "0" {
		t.Errorf("masked directory /sys/firmware is not empty (%v):\n%s", err, res.Output())
	}

	rep := e.readReport(id)
	t.Logf("hardening-report.json:\n%s", rep.raw)
	if rep.Profile != "hardened" || rep.Runtime != "runc" || rep.Mode != "enforce" {
		t.Errorf("report: profile=%q runtime=%q mode=%q, want hardened, runc, enforce", rep.Profile, rep.Runtime, rep.Mode)
	}
	if len(rep.Changes) == 0 {
		t.Errorf("report lists no changes for a default spec under the hardened profile")
	}
	if !strings.Contains(strings.ToLower(rep.raw), "apparmor") {
		t.Errorf("report does not mention AppArmor, which this kernel cannot enforce: the notEnforced list must say so")
	}
}

// TestForkBombHeldByPidsLimit: a shell spawning `sleep` until fork fails is
// stopped by the profile's pids limit, and the container survives it.
func TestForkBombHeldByPidsLimit(t *testing.T) {
	e := newEnv(t)
	id := e.id("forkbomb")
	// The keeper is a job of PID 1: while the shell waits for it, it reaps
	// the bomb's sleeps (orphans reparented to it) as they exit, which
	// frees a pid; then a fork works again. The loop is bounded; the bomb
	// takes about a second here, and its sleeps last 60 so that it reaches
	// the limit even on a loaded machine (a CI run beside a build forked
	// one sleep per 12 ms: sleeps of 8 s had ended before the 1024th).
	script := `
sleep 10 & keeper=$!
( i=0; while [ $i -lt 5000 ]; do sleep 60 & i=$((i+1)); echo $i > /tmp/spawned; done ) 2>/tmp/bomb.err
echo "bomb-exit=$?"
read n < /tmp/spawned; echo "spawned=$n"
read e < /tmp/bomb.err; echo "bomb-err=$e"
echo HELD
wait $keeper
/bin/true && echo RECOVERED
exec sleep 600`
	begin := time.Now()
	c := e.start(harness.Spec{ID: id, Runtime: harness.Hardened(""), Args: sh(script)})
	if err := c.WaitOutput(e.ctx, "HELD", 90*time.Second); err != nil {
		t.Fatalf("fork bomb did not end: %v", err)
	}
	out, _ := c.Output()
	t.Logf("fork bomb held after %s:\n%s", time.Since(begin).Round(time.Millisecond), out)
	spawned := -1
	for _, l := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(l, "spawned="); ok {
			spawned, _ = strconv.Atoi(v)
		}
	}
	// The limit as the host's pids controller holds it.
	cg := cgroupOf(t, int(c.Pid()), "pids")
	if cg == "" {
		t.Fatalf("cannot find the pids cgroup of the container's init (pid %d)", c.Pid())
	}
	data, err := os.ReadFile(filepath.Join(cg, "pids.max"))
	if err != nil {
		t.Fatalf("cannot read the container's pids.max: %v", err)
	}
	maxv, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || maxv <= 0 || maxv > 1024 {
		t.Fatalf("%s/pids.max = %q, want the hardened profile's limit (at most 1024)", cg, strings.TrimSpace(string(data)))
	}
	// The shell, the bomb's subshell and the keeper use three pids.
	if spawned >= 5000 || spawned < maxv-16 || spawned > maxv {
		t.Errorf("the bomb spawned %d sleeps, want fork to fail around pids.max=%d", spawned, maxv)
	}
	if !strings.Contains(out, "bomb-err=") || !regexp.MustCompile(`(?i)fork|resource temporarily unavailable`).MatchString(out) {
		t.Errorf("the bomb's shell did not report a failed fork:\n%s", out)
	}
	// The host saw the pids controller refuse forks.
	if data, err := os.ReadFile(filepath.Join(cg, "pids.events")); err == nil {
		t.Logf("%s: pids.max %d, pids.events %q", cg, maxv, strings.TrimSpace(string(data)))
		if f := strings.Fields(string(data)); len(f) < 2 || f[1] == "0" {
			t.Errorf("pids.events of the container = %q, want max > 0", strings.TrimSpace(string(data)))
		}
	}
	if st, err := c.Task.Status(harness.Context(e.ctx, e.ns)); err != nil || st.Status != client.Running {
		t.Fatalf("the container did not survive its fork bomb: status %v, %v", st.Status, err)
	}
	if err := c.WaitOutput(e.ctx, "RECOVERED", 90*time.Second); err != nil {
		t.Errorf("the container could not fork again once the bomb's processes were gone: %v", err)
	}
}

// cgroupOf returns the host path of pid's cgroup for a v1 controller, or
// on a cgroup v2 host its cgroup; "" when unknown.
func cgroupOf(t testing.TB, pid int, controller string) string {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return ""
	}
	for _, l := range strings.Split(string(data), "\n") {
		parts := strings.SplitN(l, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[0] == "0" && parts[1] == "" {
			if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
				return filepath.Join("/sys/fs/cgroup", parts[2])
			}
		}
		for _, c := range strings.Split(parts[1], ",") {
			if c == controller {
				return filepath.Join("/sys/fs/cgroup", controller, parts[2])
			}
		}
	}
	return ""
}

// TestExecAsRestrictedAsInit: containerd builds an exec's process from
// its stored, unhardened spec; the shim must hold it to the init's limits.
func TestExecAsRestrictedAsInit(t *testing.T) {
	e := newEnv(t)
	id := e.id("exec")
	c := e.start(harness.Spec{ID: id, Runtime: harness.Hardened(""), Args: []string{"sleep", "600"}})

	res, err := c.Exec(e.ctx, harness.Exec{Args: []string{"cat", "/proc/self/status"}})
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("exec cat /proc/self/status: %v\n%s", err, res.Output())
	}
	execSt := statusOf(t, "exec", res.Stdout)
	assertRestricted(t, "exec'd process", execSt)

	res, err = c.Exec(e.ctx, harness.Exec{Args: []string{"cat", "/proc/1/status"}})
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("exec cat /proc/1/status: %v\n%s", err, res.Output())
	}
	initSt := statusOf(t, "init", res.Stdout)
	for _, f := range []string{"CapEff", "CapPrm", "CapBnd", "NoNewPrivs", "Seccomp"} {
		if execSt[f] != initSt[f] {
			t.Errorf("exec'd process %s = %s, init %s = %s: want the exec as hardened as init", f, execSt[f], f, initSt[f])
		}
	}
	if stored := capBits(t, storedSpec(t, e, c).Process.Capabilities.Effective); hexField(t, execSt, "CapEff") == stored {
		t.Errorf("exec'd process got the stored spec's capabilities %016x: the exec was not hardened", stored)
	}

	res, err = c.Exec(e.ctx, harness.Exec{Args: []string{"ls", "-l", "/proc/self/fd"}})
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("exec ls -l /proc/self/fd: %v\n%s", err, res.Output())
	}
	assertStdioOnly(t, "exec'd process", openFds(res.Stdout), res.Stdout)
}

// TestCwdThroughProcFdRefused: the CVE-2024-21626 shape, a working
// directory through a leaked fd (/proc/self/fd/N), at create and at exec.
func TestCwdThroughProcFdRefused(t *testing.T) {
	e := newEnv(t)
	err := e.startRefused(harness.Spec{ID: e.id("cwd-create"), Runtime: harness.Hardened(""),
		Args: []string{"true"}, SpecOpts: []oci.SpecOpts{oci.WithProcessCwd("/proc/self/fd/7")}})
	t.Logf("create refused: %v", err)
	assertShimRefusal(t, "create with process.cwd /proc/self/fd/7", err, "cwd", "/proc/self/fd/7")

	c := e.start(harness.Spec{ID: e.id("cwd-exec"), Runtime: harness.Hardened(""), Args: []string{"sleep", "600"}})
	res, err := c.Exec(e.ctx, harness.Exec{Args: []string{"pwd"}, Cwd: "/proc/self/fd/7"})
	if err == nil {
		t.Fatalf("exec with cwd /proc/self/fd/7 ran, want the shim to refuse it:\n%s", res.Output())
	}
	t.Logf("exec refused: %v", err)
	if st := harness.Stage(err); st != "exec" {
		t.Errorf("exec failed at stage %q, want the exec itself refused", st)
	}
	assertShimRefusal(t, "exec with cwd /proc/self/fd/7", err, "cwd", "/proc/self/fd/7")
	if st, err := c.Task.Status(harness.Context(e.ctx, e.ns)); err != nil || st.Status != client.Running {
		t.Errorf("container after the refused exec: status %v, %v; want it still running", st.Status, err)
	}
}

// TestPrivilegedRefused: a privileged spec cannot be made safe.
func TestPrivilegedRefused(t *testing.T) {
	e := newEnv(t)
	err := e.startRefused(harness.Spec{ID: e.id("privileged"), Runtime: harness.Hardened(""), Args: []string{"true"},
		SpecOpts: []oci.SpecOpts{oci.WithPrivileged, oci.WithAllDevicesAllowed}})
	t.Logf("refused: %v", err)
	assertShimRefusal(t, "privileged container", err, "privileged")
}

// TestUnknownProfileRefused: a profile name nobody defined is an error
// naming the annotation, never a silent fallback.
func TestUnknownProfileRefused(t *testing.T) {
	e := newEnv(t)
	err := e.startRefused(harness.Spec{ID: e.id("nope"), Runtime: harness.Hardened(""), Args: []string{"true"},
		Annotations: map[string]string{harness.AnnotationProfile: "nope"}})
	t.Logf("refused: %v", err)
	assertShimRefusal(t, "annotation hardened.dev/profile=nope", err, harness.AnnotationProfile, "nope")
}

// A container cannot put itself into another container's shim with
// containerd's group annotation: grouping happens at `start`, before
// Create's hardening, so the shim refuses it there.
func TestGroupAnnotationRefused(t *testing.T) {
	e := newEnv(t)
	err := e.startRefused(harness.Spec{ID: e.id("group"), Runtime: harness.Hardened(""), Args: []string{"true"},
		Annotations: map[string]string{"io.containerd.runc.v2.group": "some-other-container"}})
	t.Logf("refused: %v", err)
	assertShimRefusal(t, "group annotation", err, "io.containerd.runc.v2.group", "grouped by pod")
}

// gvisorProbe prints what tells a gVisor sandbox from the host kernel.
var gvisorProbe = harness.Script(
	[2]string{"version", "cat /proc/version"},
	[2]string{"release", "uname -r"},
	[2]string{"dmesg", "dmesg"},
	[2]string{"status", "cat /proc/self/status"},
)

// assertGVisor checks the probe's output came from gVisor's Sentry, not
// the host kernel.
func assertGVisor(t testing.TB, who string, sec map[string]string) {
	t.Helper()
	release, version := harness.HostKernel()
	all := sec["version"] + sec["release"] + sec["dmesg"]
	if strings.Contains(all, version) || strings.TrimSpace(sec["release"]) == release {
		t.Errorf("%s: sees the host kernel (%s), want a gVisor sandbox:\n%s", who, release, all)
	}
	if !strings.Contains(strings.ToLower(sec["version"]+sec["release"]), "gvisor") && !strings.Contains(sec["dmesg"], "gVisor") {
		t.Errorf("%s: no gVisor marker in /proc/version, uname -r or dmesg:\n%s", who, all)
	}
}

// runscProcesses lists host processes of runsc serving container id.
func runscProcesses(id string) []string {
	var out []string
	for _, p := range harness.ProcessesNaming(id) {
		if strings.Contains(p, "runsc") {
			out = append(out, p)
		}
	}
	return out
}

// TestGVisorAnnotation: hardened.dev/runtime=gvisor runs the container in
// a runsc sandbox.
func TestGVisorAnnotation(t *testing.T) {
	e := newEnv(t)
	id := e.id("gvisor")
	c := e.start(harness.Spec{ID: id, Runtime: harness.Hardened(""), Args: sh(gvisorProbe + "echo READY; exec sleep 600"),
		Annotations: map[string]string{harness.AnnotationRuntime: "gvisor"}})
	if err := c.WaitOutput(e.ctx, "READY", readyTimeout); err != nil {
		t.Fatalf("gVisor container: %v", err)
	}
	out, _ := c.Output()
	sec := harness.Sections(out)
	t.Logf("inside:\n%s", sec["version"]+sec["release"])
	assertGVisor(t, "container annotated hardened.dev/runtime=gvisor", sec)
	st := statusOf(t, "gVisor init", sec["status"])
	if v := hexField(t, st, "CapEff"); v&^capNetBindService != 0 {
		t.Errorf("gVisor init: CapEff = %016x, want at most NET_BIND_SERVICE (hardened profile)", v)
	}
	if procs := runscProcesses(id); len(procs) == 0 {
		t.Errorf("no runsc process on the host names container %s", id)
	} else {
		t.Logf("runsc on the host: %s", procs[0])
	}
	rep := e.readReport(id)
	if rep.Runtime != "gvisor" {
		t.Errorf("report runtime = %q, want gvisor:\n%s", rep.Runtime, rep.raw)
	}
}

// TestStrictImageLabel: the image config label hardened.dev/profile=strict
// raises the profile: gVisor, the image's non-root user, no exec.
func TestStrictImageLabel(t *testing.T) {
	e := newEnv(t)
	id := e.id("strict")
	c := e.start(harness.Spec{ID: id, Image: harness.ImageStrict, Runtime: harness.Hardened(""),
		Args: sh(gvisorProbe + "echo READY; exec sleep 600")})
	if err := c.WaitOutput(e.ctx, "READY", readyTimeout); err != nil {
		t.Fatalf("strict container: %v", err)
	}
	out, _ := c.Output()
	sec := harness.Sections(out)
	st := statusOf(t, "strict init", sec["status"])
	if uid, err := st.UID(); err != nil || uid != 1000 {
		t.Errorf("strict init runs as uid %d (%v), want 1000 from the image config", uid, err)
	}
	if v := hexField(t, st, "CapEff"); v != 0 {
		t.Errorf("strict init: CapEff = %016x, want 0", v)
	}
	assertGVisor(t, "strict-labelled image", sec)

	rep := e.readReport(id)
	t.Logf("hardening-report.json:\n%s", rep.raw)
	if rep.Profile != "strict" || rep.Runtime != "gvisor" {
		t.Errorf("report: profile=%q runtime=%q, want strict on gvisor", rep.Profile, rep.Runtime)
	}

	res, err := c.Exec(e.ctx, harness.Exec{Args: []string{"id"}})
	if err == nil {
		t.Fatalf("exec into a strict container ran, want it refused:\n%s", res.Output())
	}
	t.Logf("exec refused: %v", err)
	assertShimRefusal(t, "exec into a strict container", err, "exec", "strict")
}

// TestAuditModeChangesNothing: mode = "audit" runs the spec unchanged and
// reports what enforce would have done.
func TestAuditModeChangesNothing(t *testing.T) {
	e := newEnv(t)
	pol := e.policy("mode = \"audit\"\n")
	id := e.id("audit")
	c := e.start(harness.Spec{ID: id, Runtime: harness.Hardened(pol), Args: sh(harness.Script(
		[2]string{"status", "cat /proc/self/status"},
		[2]string{"rootfs", "touch /x && echo ROOTFS-WRITABLE"},
	) + "echo READY; exec sleep 600")})
	if err := c.WaitOutput(e.ctx, "READY", readyTimeout); err != nil {
		t.Fatalf("audit container: %v", err)
	}
	out, _ := c.Output()
	sec := harness.Sections(out)
	st := statusOf(t, "audit init", sec["status"])
	want := capBits(t, storedSpec(t, e, c).Process.Capabilities.Effective)
	if got := hexField(t, st, "CapEff"); got != want {
		t.Errorf("audit mode: CapEff = %016x, want the unchanged default capabilities %016x", got, want)
	}
	if v := intField(t, st, "Seccomp"); v != 0 {
		t.Errorf("audit mode: Seccomp = %d, want 0 (containerd's default spec has no filter, audit adds none)", v)
	}
	if !strings.Contains(sec["rootfs"], "ROOTFS-WRITABLE") {
		t.Errorf("audit mode: rootfs not writable, want it unchanged:\n%s", sec["rootfs"])
	}
	rep := e.readReport(id)
	t.Logf("hardening-report.json:\n%s", rep.raw)
	if rep.Mode != "audit" {
		t.Errorf("report mode = %q, want audit", rep.Mode)
	}
	if rep.Profile != "hardened" {
		t.Errorf("report profile = %q, want hardened (what enforce would apply)", rep.Profile)
	}
	if len(rep.Changes) == 0 {
		t.Errorf("audit report lists no changes, want what enforce would change (capabilities, read-only rootfs, seccomp, ...)")
	}
	low := strings.ToLower(rep.raw)
	for _, w := range []string{"capabilities", "readonly"} {
		if !strings.Contains(strings.ReplaceAll(low, "_", ""), w) {
			t.Errorf("audit report does not mention %q among the changes enforce would make", w)
		}
	}
}

// TestMinimumProfileEnforced: a workload cannot ask for less than the
// node's minimum profile.
func TestMinimumProfileEnforced(t *testing.T) {
	e := newEnv(t)
	pol := e.policy("minimum_profile = \"hardened\"\n")
	err := e.startRefused(harness.Spec{ID: e.id("below-minimum"), Runtime: harness.Hardened(pol), Args: []string{"true"},
		Annotations: map[string]string{harness.AnnotationProfile: "baseline"}})
	t.Logf("refused: %v", err)
	assertShimRefusal(t, "baseline asked under minimum_profile=hardened", err, "baseline", "minimum", "hardened")
}

// TestOldRuncRefused: a runc reporting 1.1.11 (CVE-2024-21626) is refused
// before the shim runs it for anything but its version.
func TestOldRuncRefused(t *testing.T) {
	e := newEnv(t)
	calls := filepath.Join(e.d.Dir, "fake-runc.calls")
	fake := e.writeFile("fake-runc", fmt.Sprintf(`#!/bin/sh
# A runc that says it is 1.1.11. Any call but a version query is logged:
# the shim must refuse before it runs the binary for real.
for a in "$@"; do
  case "$a" in
    --version|-v|version)
      echo "runc version 1.1.11"; echo "commit: v1.1.11-0-g4bccb38c"; echo "spec: 1.0.2-dev"; echo "go: go1.20.12"; echo "libseccomp: 2.5.4"; exit 0;;
    features)
      echo '{"ociVersionMin":"1.0.0","ociVersionMax":"1.1.0","annotations":{"org.opencontainers.runc.version":"1.1.11","org.opencontainers.runc.commit":"v1.1.11-0-g4bccb38c"}}'; exit 0;;
  esac
done
echo "$*" >> %q
exit 1
`, calls), 0o755)
	// [runtimes] replaces the default table: name gvisor too.
	pol := e.policy(fmt.Sprintf("[runtimes.runc]\npath = %q\n\n[runtimes.gvisor]\npath = \"runsc\"\n", fake))
	err := e.startRefused(harness.Spec{ID: e.id("old-runc"), Runtime: harness.Hardened(pol), Args: []string{"true"}})
	t.Logf("refused: %v", err)
	assertShimRefusal(t, "runc 1.1.11", err, "1.1.11")
	if data, err := os.ReadFile(calls); err == nil {
		t.Errorf("the shim ran the refused runc for more than its version:\n%s", data)
	}
}

// TestParallelStarts: 20 containers started at once all run.
func TestParallelStarts(t *testing.T) {
	e := newEnv(t)
	const n = 20
	var wg sync.WaitGroup
	errs := make([]error, n)
	outs := make([]harness.Result, n)
	start := time.Now()
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			outs[i], errs[i] = e.d.Run(e.ctx, e.ns, harness.Spec{ID: fmt.Sprintf("par-%02d", i), Runtime: harness.Hardened(""),
				Args: sh(fmt.Sprintf("echo hello-%d; grep NoNewPrivs /proc/self/status", i))})
		}(i)
	}
	wg.Wait()
	t.Logf("%d containers in %s", n, time.Since(start).Round(time.Millisecond))
	for i := 0; i < n; i++ {
		switch {
		case errs[i] != nil:
			t.Errorf("container par-%02d: %v", i, errs[i])
		case outs[i].ExitCode != 0 || !strings.Contains(outs[i].Stdout, fmt.Sprintf("hello-%d\n", i)):
			t.Errorf("container par-%02d: %s", i, outs[i].Output())
		case !regexp.MustCompile(`NoNewPrivs:\s+1`).MatchString(outs[i].Stdout):
			t.Errorf("container par-%02d ran without no_new_privs: %s", i, outs[i].Stdout)
		}
	}
}

// TestCtrCLI: the CLI path, `ctr run --runtime io.containerd.hardened.v2
// --runtime-config-path F`, which sends runtimeoptions/v1.Options like
// CRI does; and the errors ctr prints for refusals.
func TestCtrCLI(t *testing.T) {
	e := newEnv(t)
	pol := e.policy("default_profile = \"hardened\"\n")
	base := []string{"--runtime", harness.RuntimeHardened, "--runtime-config-path", pol}
	ctx, cancel := context.WithTimeout(e.ctx, 2*time.Minute)
	defer cancel()

	res, err := e.d.CtrRun(ctx, e.ns, base, harness.ImageBusybox, e.id("ctr-ok"), "cat", "/proc/self/status")
	if err != nil {
		t.Fatalf("ctr run: %v", err)
	}
	if res.ExitCode != 0 {
		t.Fatalf("ctr run through the hardened shim failed (exit %d):\n%s%s", res.ExitCode, res.Stdout, res.Stderr)
	}
	assertRestricted(t, "ctr run", statusOf(t, "ctr run", res.Stdout))

	res, err = e.d.CtrRun(ctx, e.ns, append(base, "--annotation", harness.AnnotationProfile+"=nope"), harness.ImageBusybox, e.id("ctr-nope"), "true")
	if err != nil {
		t.Fatalf("ctr run: %v", err)
	}
	t.Logf("ctr run with an unknown profile: exit %d, stderr: %s", res.ExitCode, strings.TrimSpace(res.Stderr))
	if res.ExitCode == 0 {
		t.Fatalf("ctr run with hardened.dev/profile=nope succeeded, want a refusal:\n%s", res.Stdout)
	}
	for _, w := range []string{harness.AnnotationProfile, "nope"} {
		if !strings.Contains(res.Stderr, w) {
			t.Errorf("ctr's error does not name %q:\n%s", w, res.Stderr)
		}
	}
	if strings.Contains(res.Stderr, "runtimeoptions.v1.Options: not found") {
		t.Errorf("the shim does not register runtimeoptions/v1.Options:\n%s", res.Stderr)
	}

	res, err = e.d.CtrRun(ctx, e.ns, append(base, "--privileged"), harness.ImageBusybox, e.id("ctr-priv"), "true")
	if err != nil {
		t.Fatalf("ctr run: %v", err)
	}
	t.Logf("ctr run --privileged: exit %d, stderr: %s", res.ExitCode, strings.TrimSpace(res.Stderr))
	if res.ExitCode == 0 || !strings.Contains(strings.ToLower(res.Stderr), "privileged") {
		t.Errorf("ctr run --privileged: exit %d, want a refusal naming \"privileged\":\n%s", res.ExitCode, res.Stderr)
	}
}

// TestDeleteAfterExit: once a task has exited, deleting it with
// WithProcessKill (what CRI does when it handles a container's exit, and
// `ctr task delete --force`) kills an already-stopped process first. runc
// reports "container not running", which the runc shim code treats as
// "already gone"; the gVisor route must answer the same way. (runsc says
// "sandbox is not running", which the runc shim code does not recognise:
// containerd's stock runc shim with BinaryName=runsc fails here too, so
// the shim's runsc wrapper has to translate.)
func TestDeleteAfterExit(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		name        string
		annotations map[string]string
	}{
		{"runc", nil},
		{"gvisor", map[string]string{harness.AnnotationRuntime: "gvisor"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := e.id("exited-" + tc.name)
			c, err := e.d.Create(e.ctx, e.ns, harness.Spec{ID: id, Runtime: harness.Hardened(""), Args: []string{"true"}, Annotations: tc.annotations})
			if err != nil {
				t.Fatalf("create: %v", err)
			}
			defer c.Delete(context.Background())
			if err := c.Start(e.ctx); err != nil {
				t.Fatalf("start: %v", err)
			}
			ctx := harness.Context(e.ctx, e.ns)
			ch, err := c.Task.Wait(ctx)
			if err != nil {
				t.Fatalf("wait: %v", err)
			}
			select {
			case <-ch:
			case <-time.After(readyTimeout):
				t.Fatalf("%s did not exit", id)
			}
			if _, err := c.Task.Delete(ctx, client.WithProcessKill); err != nil {
				t.Errorf("task.Delete(WithProcessKill) of the exited %s container: %v", tc.name, err)
			} else {
				c.Task = nil
			}
		})
	}
}

// TestParallelStartsColdRuncGate: 20 containers at once, each with a node
// policy naming its own runc path (a wrapper script that execs the pinned
// runc), so that every shim has to run `runc --version` for its gate
// instead of reading a cached verdict: what happens on a node's first
// starts after a boot or a runc upgrade. The shim runs that command while
// the runc shim code's SIGCHLD reaper (wait4(-1)) is active; a probe that
// does not go through the reaper loses its child to it ("waitid: no child
// processes") now and then.
func TestParallelStartsColdRuncGate(t *testing.T) {
	e := newEnv(t)
	const n = 20
	realRunc := filepath.Join(suite.toolsBin, "runc")
	var wg sync.WaitGroup
	errs := make([]error, n)
	outs := make([]harness.Result, n)
	pols := make([]string, n)
	for i := 0; i < n; i++ {
		w := e.writeFile(fmt.Sprintf("runc-%02d", i), fmt.Sprintf("#!/bin/sh\nexec %s \"$@\"\n", realRunc), 0o755)
		pols[i] = e.policy(fmt.Sprintf("[runtimes.runc]\npath = %q\n\n[runtimes.gvisor]\npath = \"runsc\"\n", w))
	}
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			outs[i], errs[i] = e.d.Run(e.ctx, e.ns, harness.Spec{ID: fmt.Sprintf("cold-%02d", i), Runtime: harness.Hardened(pols[i]),
				Args: sh(fmt.Sprintf("echo hello-%d", i))})
		}(i)
	}
	wg.Wait()
	failed := 0
	for i := 0; i < n; i++ {
		switch {
		case errs[i] != nil:
			failed++
			t.Errorf("container cold-%02d: %v", i, errs[i])
		case outs[i].ExitCode != 0 || !strings.Contains(outs[i].Stdout, fmt.Sprintf("hello-%d\n", i)):
			failed++
			t.Errorf("container cold-%02d: %s", i, outs[i].Output())
		}
	}
	if failed > 0 {
		t.Logf("%d of %d cold-gate starts failed", failed, n)
	}
}
