//go:build integration

package integration

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/containerd/containerd/api/events"
	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containerd/typeurl/v2"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hardened-dev/hardened/integration/harness"
)

// The cases of this file need what nodes have and this machine's kernel
// has not: cgroup v2 and AppArmor. They run in `make test-vm`
// (integration/vm: Debian's kernel under qemu), where HARDENED_IN_VM=1
// makes a missing feature a failure; elsewhere they skip, saying so.

// inVM: the test binary runs in make test-vm's guest.
func inVM() bool { return os.Getenv("HARDENED_IN_VM") == "1" }

// appArmorOn: the kernel enforces AppArmor.
func appArmorOn() bool {
	data, _ := os.ReadFile("/sys/module/apparmor/parameters/enabled")
	return strings.TrimSpace(string(data)) == "Y"
}

// requireNodeKernel skips (fails in the VM) unless the kernel has cgroup
// v2 mounted at /sys/fs/cgroup and, with appArmor, AppArmor enabled.
func requireNodeKernel(t *testing.T, appArmor bool) {
	t.Helper()
	var missing []string
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err != nil {
		missing = append(missing, "cgroup v2")
	}
	if appArmor && !appArmorOn() {
		missing = append(missing, "AppArmor")
	}
	if len(missing) == 0 {
		return
	}
	if inVM() {
		t.Fatalf("the VM's kernel lacks %s", strings.Join(missing, " and "))
	}
	t.Skipf("SKIPPED: this kernel lacks %s; the case runs in make test-vm (Debian's kernel under qemu)", strings.Join(missing, " and "))
}

// apparmorLabel is the AppArmor label of a process as the kernel reports
// it ("hardened-default (enforce)").
const readLabel = "cat /proc/self/attr/current"

// TestVMAppArmorEnforced: on a kernel with AppArmor, a container under
// the default profile runs confined by hardened-default (the shim
// generated and loaded it from containerd's template), in enforce mode, as
// is a process exec'd into it; the report lists no AppArmor gap.
func TestVMAppArmorEnforced(t *testing.T) {
	requireNodeKernel(t, true)
	e := newEnv(t)
	id := e.id("apparmor")
	c := e.start(harness.Spec{ID: id, Runtime: harness.Hardened(""), Args: sh(readLabel + "; echo READY; exec sleep 600")})
	if err := c.WaitOutput(e.ctx, "READY", readyTimeout); err != nil {
		t.Fatal(err)
	}
	out, _ := c.Output()
	if !strings.Contains(out, "hardened-default (enforce)") {
		t.Errorf("init's AppArmor label: %q, want hardened-default (enforce)", out)
	}
	res, err := c.Exec(e.ctx, harness.Exec{Args: sh(readLabel)})
	if err != nil || !strings.Contains(res.Stdout, "hardened-default (enforce)") {
		t.Errorf("exec'd process's AppArmor label: %v %s", err, res.Output())
	}
	loaded, err := os.ReadFile("/sys/kernel/security/apparmor/profiles")
	if err != nil || !strings.Contains(string(loaded), "hardened-default (enforce)") {
		t.Errorf("hardened-default is not loaded in enforce mode: %v\n%s", err, loaded)
	}
	rep := e.readReport(id)
	for _, g := range rep.NotEnforced {
		if strings.Contains(strings.ToLower(string(g)), "apparmor") {
			t.Errorf("the report lists an AppArmor gap on a kernel that enforces it: %s", g)
		}
	}
}

// TestVMAppArmorOperatorProfiles: an operator's profile that names an
// AppArmor profile not loaded refuses the container, as does one loaded in
// complain mode (the container would be effectively unconfined); loaded
// in enforce mode it confines the container. `apparmor = "required"` runs
// where AppArmor is enabled (on this machine's kernel it refuses:
// TestAppArmorRequiredRefusedWithout).
func TestVMAppArmorOperatorProfiles(t *testing.T) {
	requireNodeKernel(t, true)
	e := newEnv(t)
	dir := filepath.Dir(e.writeFile("profiles/op.toml", "name = \"op\"\nextends = \"hardened\"\nrank = 22\n[apparmor]\nprofile = \"hd-op\"\n", 0o644))
	pol := e.policy("default_profile = \"op\"\nminimum_profile = \"op\"\napparmor = \"required\"\nprofiles_dir = \"" + dir + "\"\n")

	err := e.startRefused(harness.Spec{ID: e.id("not-loaded"), Runtime: harness.Hardened(pol), Args: []string{"true"}})
	assertShimRefusal(t, "AppArmor profile not loaded", err, "hd-op", "not loaded")

	profile := e.writeFile("hd-op.apparmor", "profile hd-op flags=(attach_disconnected,mediate_deleted) {\n  file,\n  capability,\n  network,\n  signal,\n  ptrace (read),\n  mount,\n  umount,\n  pivot_root,\n  unix,\n}\n", 0o644)
	load := func(args ...string) {
		t.Helper()
		if out, err := runCmd(e.ctx, "apparmor_parser", append(args, profile)...); err != nil {
			t.Fatalf("apparmor_parser %v: %v\n%s", args, err, out)
		}
	}
	unload := func() { _, _ = runCmd(context.Background(), "apparmor_parser", "-R", profile) }
	t.Cleanup(unload)

	load("-r", "-C") // complain mode
	err = e.startRefused(harness.Spec{ID: e.id("complain"), Runtime: harness.Hardened(pol), Args: []string{"true"}})
	assertShimRefusal(t, "AppArmor profile in complain mode", err, "hd-op", "complain")

	load("-r") // enforce
	c := e.start(harness.Spec{ID: e.id("enforce"), Runtime: harness.Hardened(pol), Args: sh(readLabel + "; echo READY; exec sleep 600")})
	if err := c.WaitOutput(e.ctx, "READY", readyTimeout); err != nil {
		t.Fatal(err)
	}
	if out, _ := c.Output(); !strings.Contains(out, "hd-op (enforce)") {
		t.Errorf("container's AppArmor label %q, want hd-op (enforce)", out)
	}
}

// TestVMCgroupV2Limits: on cgroup v2, a spec giving the container a
// device the profile does not allow (/dev/mem, its node and an allow rule)
// is made safe: both removed, reported, and the device is out of reach,
// also through a node made in the container (runc's eBPF device filter
// refuses its open with EPERM); the profile's pids limit is the container
// cgroup's pids.max; an Update raising the pids limit above the profile's
// is refused and leaves pids.max as it was.
func TestVMCgroupV2Limits(t *testing.T) {
	requireNodeKernel(t, false)
	e := newEnv(t)
	baseline := e.policy("default_profile = \"baseline\"\nminimum_profile = \"baseline\"\n")
	mem := func(_ context.Context, _ oci.Client, _ *containers.Container, s *specs.Spec) error {
		major, minor, mode := int64(1), int64(1), os.FileMode(0o640)
		s.Linux.Devices = append(s.Linux.Devices, specs.LinuxDevice{Path: "/dev/mem", Type: "c", Major: 1, Minor: 1, FileMode: &mode})
		s.Linux.Resources.Devices = append(s.Linux.Resources.Devices, specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: &major, Minor: &minor, Access: "rwm"})
		return nil
	}
	id := e.id("limits")
	c := e.start(harness.Spec{ID: id, Runtime: harness.Hardened(baseline), SpecOpts: []oci.SpecOpts{mem}, Args: sh(
		"ls /dev/mem && echo DEV-MEM-PRESENT; mknod /tmp/mem c 1 1 && echo MKNOD-OK; head -c1 /tmp/mem >/dev/null && echo MEM-READ; echo READY; exec sleep 600")})
	if err := c.WaitOutput(e.ctx, "READY", readyTimeout); err != nil {
		t.Fatal(err)
	}
	out, errOut := c.Output()
	t.Logf("device probe:\n%s%s", out, errOut)
	switch {
	case strings.Contains(out, "DEV-MEM-PRESENT"):
		t.Errorf("/dev/mem from the spec is in the container:\n%s", out)
	case !strings.Contains(out, "MKNOD-OK"):
		t.Errorf("mknod of a device node failed (baseline keeps CAP_MKNOD): the probe proves nothing:\n%s%s", out, errOut)
	case strings.Contains(out, "MEM-READ") || !strings.Contains(errOut, "Operation not permitted"):
		t.Errorf("a device node for /dev/mem made in the container was not refused by the device filter (EPERM):\n%s%s", out, errOut)
	}
	if rep := e.readReport(id); !strings.Contains(rep.raw, "/dev/mem") || !strings.Contains(rep.raw, "allow c 1:1 rwm") {
		t.Errorf("the report does not list /dev/mem and its allow rule removed:\n%s", rep.raw)
	}
	cg := v2Cgroup(t, int(c.Pid()))
	pidsMax := func() string {
		data, err := os.ReadFile(filepath.Join(cg, "pids.max"))
		if err != nil {
			t.Fatalf("pids.max of %s: %v", cg, err)
		}
		return strings.TrimSpace(string(data))
	}
	if got := pidsMax(); got != "4096" {
		t.Errorf("pids.max = %s, want baseline's 4096", got)
	}
	more := int64(100000)
	err := c.Task.Update(namespaces.WithNamespace(e.ctx, e.ns), client.WithResources(&specs.LinuxResources{Pids: &specs.LinuxPids{Limit: &more}}))
	if err == nil {
		t.Errorf("an Update raising pids to %d was accepted", more)
	} else {
		assertShimRefusal(t, "Update raising pids", err, "pids")
	}
	if got := pidsMax(); got != "4096" {
		t.Errorf("pids.max after the refused Update = %s, want 4096 unchanged", got)
	}
}

// v2Cgroup is the host path of pid's cgroup v2.
func v2Cgroup(t *testing.T, pid int) string {
	t.Helper()
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if rest, ok := strings.CutPrefix(l, "0::"); ok {
			return filepath.Join("/sys/fs/cgroup", rest)
		}
	}
	t.Fatalf("no cgroup v2 line for pid %d: %s", pid, data)
	return ""
}

// TestVMMemoryLimitOOM: a container with a memory limit that allocates past
// it is killed by the kernel's OOM killer inside its cgroup, and containerd
// publishes the OOM event for it (/tasks/oom), which the shim forwards.
func TestVMMemoryLimitOOM(t *testing.T) {
	requireNodeKernel(t, false)
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(e.ctx, 3*time.Minute)
	defer cancel()
	evs, errs := e.d.Client.Subscribe(ctx, `topic=="/tasks/oom"`)
	id := e.id("oom")
	limit := int64(32 << 20)
	// tail keeps every byte of a line that never ends.
	c := e.start(harness.Spec{ID: id, Runtime: harness.Hardened(""), Args: sh("echo READY; head -c 200m /dev/zero | tail; echo SURVIVED; exec sleep 600"),
		SpecOpts: []oci.SpecOpts{oci.WithMemoryLimit(uint64(limit))}})
	if err := c.WaitOutput(e.ctx, "READY", readyTimeout); err != nil {
		t.Fatal(err)
	}
	for {
		select {
		case env := <-evs:
			v, err := typeurl.UnmarshalAny(env.Event)
			if err != nil {
				t.Fatal(err)
			}
			if oom, ok := v.(*events.TaskOOM); ok && oom.ContainerID == id {
				t.Logf("OOM event for %s in namespace %s", id, env.Namespace)
				// The kernel may kill more than one process of the cgroup
				// (the pipe's tail, then head).
				data, _ := os.ReadFile(filepath.Join(v2Cgroup(t, int(c.Pid())), "memory.events"))
				kills := -1
				for _, l := range strings.Split(string(data), "\n") {
					if v, ok := strings.CutPrefix(l, "oom_kill "); ok {
						kills, _ = strconv.Atoi(v)
					}
				}
				if kills < 1 {
					t.Errorf("memory.events does not count the kill:\n%s", data)
				}
				return
			}
		case err := <-errs:
			t.Fatalf("event stream: %v", err)
		case <-ctx.Done():
			out, _ := c.Output()
			t.Fatalf("no /tasks/oom event for %s; output:\n%s", id, out)
		}
	}
}

// TestAppArmorRequiredRefusedWithout: `apparmor = "required"` refuses a
// container where the kernel has no AppArmor, naming it; the default
// ("if-available") runs it and reports the gap (TestRestrictedByDefault).
// On a kernel with AppArmor, TestVMAppArmorOperatorProfiles runs required.
func TestAppArmorRequiredRefusedWithout(t *testing.T) {
	if appArmorOn() {
		t.Skip("SKIPPED: this kernel has AppArmor; required is exercised by TestVMAppArmorOperatorProfiles")
	}
	e := newEnv(t)
	pol := e.policy("apparmor = \"required\"\n")
	err := e.startRefused(harness.Spec{ID: e.id("required"), Runtime: harness.Hardened(pol), Args: []string{"true"}})
	assertShimRefusal(t, "apparmor required without AppArmor", err, "AppArmor")
}

// runCmd runs a command of the host (the guest, in the VM).
func runCmd(ctx context.Context, name string, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	return string(out), err
}
