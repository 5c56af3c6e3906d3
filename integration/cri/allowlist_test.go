//go:build integration

package cri

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestCRIHostPathConsent: hostPath volumes through the kubelet's path (CRI
// CreateContainer mounts) on the hardened handler. A host path outside the
// pod's own files and the node policy's consent is refused, naming the
// mount and the policy key; the test policies consent to hostRODir
// read-only, so a writable mount there is refused and a read-only one runs
// ro,nosuid,nodev (a device node on it cannot be opened, a write fails).
func TestCRIHostPathConsent(t *testing.T) {
	e := env(t)
	needShim(t, e)
	noConsent := filepath.Join(e.Dir, "host-none", "vol")
	roVol := filepath.Join(e.Dir, hostRODir, "vol")
	for _, d := range []string{noConsent, roVol} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := unix.Mknod(filepath.Join(d, "nulldev"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err != nil {
			t.Fatal(err)
		}
	}
	mount := func(src string, ro bool) []map[string]any {
		return []map[string]any{{"container_path": "/data", "host_path": src, "readonly": ro}}
	}
	p := e.mustRunPod(t, t.Name(), podOpts{Handler: handlerHardened})

	for _, tc := range []struct {
		name, src string
		ro        bool
		names     []string
	}{
		{"no-consent", noConsent, false, []string{noConsent, "allow_host_path_prefixes", "operator's consent"}},
		{"no-consent-ro", noConsent, true, []string{noConsent, "allow_host_path_prefixes", "operator's consent"}},
		{"ro-entry-rw", roVol, false, []string{roVol, "read-only only", filepath.Join(e.Dir, hostRODir) + "/"}},
	} {
		_, err := p.start(t, tc.name, ctrOpts{Command: sleepCmd, Mounts: mount(tc.src, tc.ro)})
		if err == nil {
			t.Errorf("%s: the container with host path %s (readonly %v) started, want it refused", tc.name, tc.src, tc.ro)
			continue
		}
		t.Logf("%s refused: %v", tc.name, err)
		for _, w := range append([]string{"hardened", "mounts[", "].source"}, tc.names...) {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: the CRI error does not name %q:\n%v", tc.name, w, err)
			}
		}
	}

	id := p.mustStart(t, "ro-entry-ro", ctrOpts{Command: sleepCmd, Mounts: mount(roVol, true)})
	mi := e.mustExec(t, id, "cat", "/proc/self/mountinfo")
	var opts []string
	for _, line := range strings.Split(mi, "\n") {
		if f := strings.Fields(line); len(f) > 5 && f[4] == "/data" {
			opts = strings.Split(f[5], ",")
		}
	}
	t.Logf("/data mounted with %v", opts)
	for _, want := range []string{"ro", "nosuid", "nodev"} {
		if !slices.Contains(opts, want) {
			t.Errorf("/data is mounted %v, want %s among its options", opts, want)
		}
	}
	if out, err := e.execSync(t, id, "cat", "/data/nulldev"); err == nil || !strings.Contains(out+err.Error(), "Permission denied") {
		t.Errorf("the device node on the host path was usable (want EACCES from nodev): %v %q", err, out)
	}
	if out, err := e.execSync(t, id, "touch", "/data/written"); err == nil || !strings.Contains(out+err.Error(), "Read-only file system") {
		t.Errorf("the read-only host path took a write: %v %q", err, out)
	}
	if _, err := os.Stat(filepath.Join(roVol, "written")); err == nil {
		t.Errorf("a file written through the read-only mount is on the host in %s", roVol)
	}
}

// TestCRISysctls: pod sysctls through CRI on the hardened handler. One of
// Kubernetes' safe set is applied (the container reads it back from its
// own network namespace); a namespaced one outside the set is refused at
// RunPodSandbox, naming it.
func TestCRISysctls(t *testing.T) {
	e := env(t)
	needShim(t, e)
	p := e.mustRunPod(t, t.Name()+"-safe", podOpts{Handler: handlerHardened,
		Sysctls: map[string]string{"net.ipv4.ip_unprivileged_port_start": "80"}})
	id := p.mustStart(t, "reader", ctrOpts{Command: sleepCmd})
	if got := strings.TrimSpace(e.mustExec(t, id, "cat", "/proc/sys/net/ipv4/ip_unprivileged_port_start")); got != "80" {
		t.Errorf("net.ipv4.ip_unprivileged_port_start in the pod = %q, want 80", got)
	}

	_, err := e.runPod(t, t.Name()+"-unsafe", podOpts{Handler: handlerHardened,
		Sysctls: map[string]string{"fs.mqueue.msg_max": "100"}})
	if err == nil {
		t.Fatal("a pod with fs.mqueue.msg_max ran on hardened, want it refused (not in hardened's safe set)")
	}
	t.Logf("refused: %v", err)
	for _, w := range []string{"hardened", "linux.sysctl", "fs.mqueue.msg_max", "hardened"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("the CRI error does not name %q:\n%v", w, err)
		}
	}
}

// TestCRIRouteProfileNotLowered: the hardened-min policy's route sends pods
// labelled hardened.test/strict=true to profile strict. Such a pod cannot
// annotate itself down to hardened; without the annotation it runs
// strict.
func TestCRIRouteProfileNotLowered(t *testing.T) {
	e := env(t)
	needShim(t, e)
	labels := map[string]string{"hardened.test/strict": "true"}
	_, err := e.runPod(t, t.Name()+"-lowered", podOpts{Handler: handlerMin, Labels: labels,
		Annotations: map[string]string{"hardened.dev/profile": "hardened"}})
	if err == nil {
		t.Fatal("a pod the route sends to strict ran with profile hardened from its annotation")
	}
	t.Logf("refused: %v", err)
	for _, w := range []string{"hardened", "hardened.dev/profile", "hardened", "strict", "route"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("the CRI error does not name %q:\n%v", w, err)
		}
	}

	p := e.mustRunPod(t, t.Name(), podOpts{Handler: handlerMin, Labels: labels})
	id := p.mustStart(t, "sleeper", ctrOpts{Command: sleepCmd,
		Linux: map[string]any{"security_context": map[string]any{"run_as_user": map[string]any{"value": 1000}}}})
	if r := e.report(t, id); r.Profile != "strict" {
		t.Errorf("the routed pod's container runs profile %q, want strict", r.Profile)
	}
}
