//go:build integration

package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/hardened-dev/hardened/integration/harness"
)

// hostBind is a spec option adding a bind of the host directory src at
// /data with the given options.
func hostBind(src string, options ...string) oci.SpecOpts {
	return oci.WithMounts([]specs.Mount{{Type: "bind", Source: src, Destination: "/data", Options: options}})
}

// hostVolume makes a directory in the test's temp dir holding a character
// device node (1:3, /dev/null's numbers: allowed by containerd's default
// device cgroup rules, so only nodev can stop its use) and returns it.
func hostVolume(t *testing.T, e *env, name string) string {
	t.Helper()
	vol := filepath.Join(e.d.Dir, name)
	if err := os.Mkdir(vol, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mknod(filepath.Join(vol, "nulldev"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err != nil {
		t.Fatal(err)
	}
	return vol
}

// mountOptions returns the per-mount options (mountinfo's sixth field) of
// the mount at dst in a container's /proc/self/mountinfo, the last one
// there wins.
func mountOptions(t testing.TB, mountinfo, dst string) []string {
	t.Helper()
	var opts []string
	for _, line := range strings.Split(mountinfo, "\n") {
		if f := strings.Fields(line); len(f) > 5 && f[4] == dst {
			opts = strings.Split(f[5], ",")
		}
	}
	if opts == nil {
		t.Fatalf("no mount at %s in mountinfo:\n%s", dst, mountinfo)
	}
	return opts
}

func hasAll(list []string, want ...string) bool {
	for _, w := range want {
		found := false
		for _, l := range list {
			found = found || l == w
		}
		if !found {
			return false
		}
	}
	return true
}

// bindProbe is what the host-bind containers run: their mount of /data,
// a read of the device node on it (refused on a nodev mount), a write.
var bindProbe = sh(harness.Script(
	[2]string{"mountinfo", "cat /proc/self/mountinfo"},
	[2]string{"dev", "cat /data/nulldev && echo DEV-READABLE"},
	[2]string{"write", "echo written > /data/from-container && echo WRITE-OK"},
))

// TestHostBindNeedsConsent: the attack that opened issue 8 was a container
// under the default profile writing a setuid-root binary into a host
// directory bind-mounted read-write. A host path outside the pod's own
// files is now refused unless the node policy consents to it
// (allow_host_path_prefixes); with consent it is mounted nosuid,nodev, so
// what lands there cannot raise privileges or reach devices in the
// container.
func TestHostBindNeedsConsent(t *testing.T) {
	e := newEnv(t)
	vol := hostVolume(t, e, "vol")

	err := e.startRefused(harness.Spec{ID: e.id("no-consent"), Runtime: harness.Hardened(""), Args: []string{"true"},
		SpecOpts: []oci.SpecOpts{hostBind(vol, "rbind", "rw")}})
	t.Logf("refused without consent: %v", err)
	assertShimRefusal(t, "a writable host bind without the operator's consent", err,
		"mounts[", "].source", vol, "allow_host_path_prefixes", "operator's consent")
	if _, err := os.Stat(filepath.Join(vol, "from-container")); err == nil {
		t.Errorf("the refused container wrote into %s", vol)
	}

	pol := e.policy(fmt.Sprintf("allow_host_path_prefixes = [{ prefix = %q }]\n", e.d.Dir+"/"))
	res := e.run(harness.Spec{ID: e.id("consent"), Runtime: harness.Hardened(pol), Args: bindProbe,
		SpecOpts: []oci.SpecOpts{hostBind(vol, "rbind", "rw")}})
	sec := harness.Sections(res.Stdout)
	opts := mountOptions(t, sec["mountinfo"], "/data")
	t.Logf("/data mounted with %v; device read: %q; write: %q", opts, sec["dev"], sec["write"])
	if !hasAll(opts, "rw", "nosuid", "nodev") {
		t.Errorf("/data is mounted %v, want rw,nosuid,nodev (a host bind never carries setuid bits or device nodes into the container)", opts)
	}
	if strings.Contains(sec["dev"], "DEV-READABLE") || !strings.Contains(sec["dev"], "Permission denied") {
		t.Errorf("the device node on the host bind was usable (want EACCES from nodev):\n%s", sec["dev"])
	}
	if !strings.Contains(sec["write"], "WRITE-OK") {
		t.Errorf("the consented read-write bind was not writable:\n%s", sec["write"])
	}
	if data, err := os.ReadFile(filepath.Join(vol, "from-container")); err != nil || string(data) != "written\n" {
		t.Errorf("the container's write did not reach %s: %q, %v", vol, data, err)
	}
}

// TestHostBindReadOnlyConsent: an allow_host_path_prefixes entry with
// read_only = true lets the path be mounted read-only and refuses a
// writable mount of it.
func TestHostBindReadOnlyConsent(t *testing.T) {
	e := newEnv(t)
	vol := hostVolume(t, e, "vol")
	entry := e.d.Dir + "/"
	pol := e.policy(fmt.Sprintf("allow_host_path_prefixes = [{ prefix = %q, read_only = true }]\n", entry))

	err := e.startRefused(harness.Spec{ID: e.id("ro-consent-rw"), Runtime: harness.Hardened(pol), Args: []string{"true"},
		SpecOpts: []oci.SpecOpts{hostBind(vol, "rbind", "rw")}})
	t.Logf("refused rw under a read-only entry: %v", err)
	assertShimRefusal(t, "a writable bind under a read-only consent", err,
		"mounts[", "].source", vol, "read-only only", entry)

	res := e.run(harness.Spec{ID: e.id("ro-consent-ro"), Runtime: harness.Hardened(pol), Args: bindProbe,
		SpecOpts: []oci.SpecOpts{hostBind(vol, "rbind", "ro")}})
	sec := harness.Sections(res.Stdout)
	opts := mountOptions(t, sec["mountinfo"], "/data")
	t.Logf("/data mounted with %v; write: %q", opts, sec["write"])
	if !hasAll(opts, "ro", "nosuid", "nodev") {
		t.Errorf("/data is mounted %v, want ro,nosuid,nodev", opts)
	}
	if strings.Contains(sec["write"], "WRITE-OK") || !strings.Contains(sec["write"], "Read-only file system") {
		t.Errorf("the read-only bind took a write (want EROFS):\n%s", sec["write"])
	}
	if _, err := os.Stat(filepath.Join(vol, "from-container")); err == nil {
		t.Errorf("a file written through the read-only bind is on the host in %s", vol)
	}
}

// TestRouteProfileNotLowered: a route's profile is a floor. A container
// the route sends to strict cannot annotate itself down to hardened (an
// NRI plugin or the pod author could add that annotation), and without the
// annotation it runs strict.
func TestRouteProfileNotLowered(t *testing.T) {
	e := newEnv(t)
	pol := e.policy(`[[routes]]
match = { annotations = { "example.com/untrusted" = "true" } }
profile = "strict"
`)
	err := e.startRefused(harness.Spec{ID: e.id("route-lowered"), Runtime: harness.Hardened(pol), Args: []string{"true"},
		Annotations: map[string]string{"example.com/untrusted": "true", harness.AnnotationProfile: "hardened"}})
	t.Logf("refused: %v", err)
	assertShimRefusal(t, "hardened asked by a container the route sends to strict", err, "hardened", "strict", "route")

	id := e.id("route-strict")
	c := e.start(harness.Spec{ID: id, Image: harness.ImageStrict, Runtime: harness.Hardened(pol),
		Annotations: map[string]string{"example.com/untrusted": "true"},
		Args:        sh("echo READY; exec sleep 600")})
	if err := c.WaitOutput(e.ctx, "READY", readyTimeout); err != nil {
		t.Fatalf("routed container: %v", err)
	}
	if rep := e.readReport(id); rep.Profile != "strict" {
		t.Errorf("the routed container runs profile %q, want strict:\n%s", rep.Profile, rep.raw)
	}
}

// TestSysctlsByAllowlist: hardened lets a container set a sysctl of
// Kubernetes' safe set in its own network namespace (the kernel shows the
// value) and refuses a namespaced one outside that set, naming it.
func TestSysctlsByAllowlist(t *testing.T) {
	e := newEnv(t)
	withSysctl := func(k, v string) oci.SpecOpts {
		return func(_ context.Context, _ oci.Client, _ *containers.Container, s *specs.Spec) error {
			if s.Linux.Sysctl == nil {
				s.Linux.Sysctl = map[string]string{}
			}
			s.Linux.Sysctl[k] = v
			return nil
		}
	}
	res := e.run(harness.Spec{ID: e.id("safe-sysctl"), Runtime: harness.Hardened(""),
		Args:     sh("cat /proc/sys/net/ipv4/ip_unprivileged_port_start"),
		SpecOpts: []oci.SpecOpts{withSysctl("net.ipv4.ip_unprivileged_port_start", "0")}})
	if got := strings.TrimSpace(res.Stdout); got != "0" {
		t.Errorf("net.ipv4.ip_unprivileged_port_start in the container = %q, want 0 (set from the spec)", got)
	}
	err := e.startRefused(harness.Spec{ID: e.id("unsafe-sysctl"), Runtime: harness.Hardened(""), Args: []string{"true"},
		SpecOpts: []oci.SpecOpts{withSysctl("kernel.msgmax", "65536")}})
	t.Logf("refused: %v", err)
	assertShimRefusal(t, "kernel.msgmax under hardened", err, "linux.sysctl", "kernel.msgmax", "hardened")
}
