package shim

import (
	"encoding/json"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/containerd/containerd/v2/pkg/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/grpc/codes"

	"github.com/hardened-dev/hardened/internal/hostfacts"
)

func withNetnsPath(path string) oci.SpecOpts {
	return oci.WithLinuxNamespace(specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: path})
}

// A namespace of its own (as a pod sandbox's) is not the host's, and
// Create refuses the host's one under hardened.
func TestCreateRefusesHostNamespaceByInode(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("SKIP: needs root to create a network namespace")
	}
	cmd := exec.Command("unshare", "--net", "sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	own := "/proc/" + strconv.Itoa(cmd.Process.Pid) + "/ns/net"
	for range 100 { // until unshare has exec'd sleep in its namespace
		if host, err := hostfacts.HostNamespaces(&specs.Spec{Linux: &specs.Linux{Namespaces: []specs.LinuxNamespace{{Type: specs.NetworkNamespace, Path: own}}}}, "/proc"); err == nil && len(host) == 0 {
			break
		}
		exec.Command("sleep", "0.01").Run()
	}

	ts := newTestService(t, nil)
	ok := defaultSpec(t, "own", oci.WithProcessArgs("/bin/sh"), withNetnsPath(own))
	if _, err := ts.create(t, "own", ts.bundle(t, "own", ok), policyOpts(t, testPolicy("enforce", ""))); err != nil {
		t.Fatalf("a namespace of its own refused: %v", err)
	}
	bad := defaultSpec(t, "hostnet2", oci.WithProcessArgs("/bin/sh"), withNetnsPath("/proc/self/root/proc/2/ns/net"))
	_, err := ts.create(t, "hostnet2", ts.bundle(t, "hostnet2", bad), policyOpts(t, testPolicy("enforce", "")))
	wantCode(t, err, codes.FailedPrecondition, "network namespace path /proc/self/root/proc/2/ns/net is the host's")
}

func TestCheckGrouping(t *testing.T) {
	dir := t.TempDir()
	write := func(ann map[string]string) string {
		p := dir + "/config.json"
		data, _ := json.Marshal(&specs.Spec{Annotations: ann})
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if err := checkGrouping(write(map[string]string{"io.kubernetes.cri.sandbox-id": "abc"})); err != nil {
		t.Fatalf("a pod's container refused: %v", err)
	}
	err := checkGrouping(write(map[string]string{groupAnnotation: "victim"}))
	if err == nil || !strings.Contains(err.Error(), groupAnnotation) {
		t.Fatalf("err = %v, want the group annotation refused", err)
	}
	if err := checkGrouping(dir + "/missing.json"); err == nil {
		t.Fatal("a missing config.json was accepted")
	}
}

func TestCreateRefusesUserNamespaceOnGVisor(t *testing.T) {
	ts := newTestService(t, nil)
	userns := oci.WithLinuxNamespace(specs.LinuxNamespace{Type: specs.UserNamespace})
	gvisor := oci.WithAnnotations(map[string]string{"hardened.dev/runtime": "gvisor"})
	s := defaultSpec(t, "u1", oci.WithProcessArgs("/bin/sh"), userns, gvisor)
	_, err := ts.create(t, "u1", ts.bundle(t, "u1", s), policyOpts(t, testPolicy("enforce", "")))
	wantCode(t, err, codes.FailedPrecondition, "gVisor (runsc) cannot run user-namespaced containers", "annotation hardened.dev/runtime")
	if len(ts.inner.creates) != 0 {
		t.Fatal("runsc was asked to create a user-namespaced container")
	}
	// On runc, the same spec runs.
	s = defaultSpec(t, "u2", oci.WithProcessArgs("/bin/sh"), userns)
	if _, err := ts.create(t, "u2", ts.bundle(t, "u2", s), policyOpts(t, testPolicy("enforce", ""))); err != nil {
		t.Fatalf("user-namespaced container refused on runc: %v", err)
	}
}
