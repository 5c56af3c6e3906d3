package hardening

import (
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestNamespaces(t *testing.T) {
	setNS := func(typ specs.LinuxNamespaceType, path string) func(*specs.Spec) {
		return func(s *specs.Spec) {
			for i := range s.Linux.Namespaces {
				if s.Linux.Namespaces[i].Type == typ {
					s.Linux.Namespaces[i].Path = path
				}
			}
		}
	}
	dropNS := func(typ specs.LinuxNamespaceType) func(*specs.Spec) {
		return func(s *specs.Spec) {
			var keep []specs.LinuxNamespace
			for _, ns := range s.Linux.Namespaces {
				if ns.Type != typ {
					keep = append(keep, ns)
				}
			}
			s.Linux.Namespaces = keep
		}
	}
	tests := []struct {
		name    string
		mutate  func(*specs.Spec)
		field   string // refused under hardened; "" accepted
		inBasic bool   // refused under baseline too
	}{
		{"own namespaces", func(*specs.Spec) {}, "", false},
		{"pod's namespaces by pid path", setNS(specs.IPCNamespace, "/proc/4242/ns/ipc"), "", false},
		{"CNI netns", setNS(specs.NetworkNamespace, "/var/run/netns/cni-1234"), "", false},
		{"host pid (no entry)", dropNS(specs.PIDNamespace), "linux.namespaces", true},
		{"host ipc (no entry)", dropNS(specs.IPCNamespace), "linux.namespaces", true},
		{"host network (no entry)", dropNS(specs.NetworkNamespace), "linux.namespaces", true},
		{"no linux at all", func(s *specs.Spec) { s.Linux = nil }, "linux.namespaces", true},
		{"host uts is not refused", dropNS(specs.UTSNamespace), "", false},
		{"pid 1's network", setNS(specs.NetworkNamespace, "/proc/1/ns/net"), "linux.namespaces", true},
		{"runtime's own pid ns", setNS(specs.PIDNamespace, "/proc/self/ns/pid"), "linux.namespaces", true},
		{"thread-self", setNS(specs.IPCNamespace, "/proc/thread-self/ns/ipc"), "linux.namespaces", true},
		{"pid 1 task", setNS(specs.IPCNamespace, "/proc/1/task/1/ns/ipc"), "linux.namespaces", true},
		{"dotdot", setNS(specs.NetworkNamespace, "/proc/4242/../1/ns/net"), "linux.namespaces", true},
		{"unclean", setNS(specs.NetworkNamespace, "//proc/./1/ns/net"), "linux.namespaces", true},

		{"full capability set", func(s *specs.Spec) {
			s.Process.Capabilities = &specs.LinuxCapabilities{Bounding: allCaps}
		}, "process.capabilities.bounding", false},
		{"full set plus newer caps", func(s *specs.Spec) {
			s.Process.Capabilities = &specs.LinuxCapabilities{Bounding: append([]string{"CAP_BPF", "CAP_PERFMON", "CAP_CHECKPOINT_RESTORE"}, allCaps...)}
		}, "process.capabilities.bounding", false},
		{"all but one is not privileged", func(s *specs.Spec) {
			s.Process.Capabilities = &specs.LinuxCapabilities{Bounding: allCaps[1:]}
		}, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, prof := range []string{"baseline", "hardened"} {
				s := baseSpec()
				tt.mutate(s)
				err := checkNamespaces(s, mustProfile(t, prof))
				refused := tt.field != "" && (prof == "hardened" || tt.inBasic)
				if !refused {
					if err != nil {
						t.Errorf("%s: unexpected %v", prof, err)
					}
					continue
				}
				re := refusal(t, err)
				if re.Rule != RuleNamespaces || re.Field != tt.field {
					t.Errorf("%s: got %+v, want field %s", prof, re, tt.field)
				}
				if strings.Contains(tt.field, "capabilities") {
					if !strings.Contains(re.Reason, "privileged containers are refused under profile hardened") {
						t.Errorf("reason %q", re.Reason)
					}
				}
			}
		})
	}
}

func TestAllCaps(t *testing.T) {
	if len(allCaps) != 38 || allCaps[0] != "CAP_CHOWN" || allCaps[37] != "CAP_AUDIT_READ" {
		t.Fatalf("allCaps = %v", allCaps)
	}
}
