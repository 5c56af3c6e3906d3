package hostfacts

import (
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// The host's network namespace reached by paths the engine cannot see
// through: another host process, and a detour through /proc/self/root.
func TestHostNamespaceJoinsByInode(t *testing.T) {
	for _, path := range []string{"/proc/2/ns/net", "/proc/self/ns/net", "/proc/self/root/proc/self/ns/net"} {
		s := &specs.Spec{Linux: &specs.Linux{Namespaces: []specs.LinuxNamespace{{Type: specs.NetworkNamespace, Path: path}}}}
		host, err := HostNamespaces(s, "/proc")
		if err != nil {
			t.Fatal(err)
		}
		if len(host) != 1 || !strings.Contains(host[0], path) {
			t.Errorf("%s: %v, want it named as the host's", path, host)
		}
	}
	s := &specs.Spec{Linux: &specs.Linux{Namespaces: []specs.LinuxNamespace{{Type: specs.NetworkNamespace, Path: "/nonexistent/ns"}}}}
	if _, err := HostNamespaces(s, "/proc"); err == nil {
		t.Error("an unreadable namespace path was accepted")
	}
}
