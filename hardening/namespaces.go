package hardening

import (
	"path"
	"strings"

	"github.com/moby/sys/capability"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hardened-dev/hardened/profiles"
)

// hostShared are the namespaces a container must not share with the host
// under DenyHost: the pid namespace (the host's processes, signals to them,
// /proc/<pid>/root of each), the ipc namespace (host shared memory and
// semaphores) and the network namespace (host interfaces, services bound
// to localhost, the node's metadata endpoints). A spec without an entry of
// a type joins the runtime's, that is the host's.
var hostShared = []specs.LinuxNamespaceType{specs.PIDNamespace, specs.IPCNamespace, specs.NetworkNamespace}

// checkNamespaces refuses host namespaces (DenyHost) and, under
// DenyPrivileged, the full capability set (device access: devices.go).
func checkNamespaces(s *specs.Spec, prof *profiles.Profile) error {
	var l specs.Linux
	if s.Linux != nil {
		l = *s.Linux
	}
	if prof.Namespaces.DenyHost {
		for _, t := range hostShared {
			var ns *specs.LinuxNamespace
			for i := range l.Namespaces {
				if l.Namespaces[i].Type == t {
					ns = &l.Namespaces[i]
					break
				}
			}
			if ns == nil {
				return refuse(RuleNamespaces, "linux.namespaces", "no %s namespace: the container would share the host's, which profile %s refuses", t, prof.Name)
			}
			if hostNamespacePath(ns.Path) {
				return refuse(RuleNamespaces, "linux.namespaces", "%s namespace path %q is the host's, which profile %s refuses", t, ns.Path, prof.Name)
			}
		}
	}
	if prof.Namespaces.DenyPrivileged {
		if s.Process != nil && s.Process.Capabilities != nil && fullCapabilitySet(s.Process.Capabilities.Bounding) {
			return refuse(RuleNamespaces, "process.capabilities.bounding", "holds every capability: privileged containers are refused under profile %s", prof.Name)
		}
	}
	return nil
}

// hostNamespacePath reports whether p names a namespace of the host: pid
// 1's, or the runtime's own (/proc/self, /proc/thread-self: runc opens the
// path from its own process, which lives in the host's namespaces). A path
// with ".." is refused as well, since it can climb to either.
func hostNamespacePath(p string) bool {
	if p == "" {
		return false
	}
	if hasDotDot(p) {
		return true
	}
	elems := strings.Split(strings.TrimPrefix(path.Clean(p), "/"), "/")
	if len(elems) < 3 || elems[0] != "proc" {
		return false
	}
	switch elems[1] {
	case "1", "self", "thread-self":
	default:
		return false
	}
	return elems[2] == "ns" || elems[2] == "task" && len(elems) >= 5 && elems[4] == "ns"
}

// allCaps are the capabilities every kernel this shim supports has
// (CAP_CHOWN .. CAP_AUDIT_READ, Linux 3.16). containerd and Docker build a
// privileged spec from the capabilities of their own process, which on an
// older kernel lack the newer ones (CAP_PERFMON, CAP_BPF,
// CAP_CHECKPOINT_RESTORE): a bounding set holding all of these is the full
// set, whatever the kernel.
var allCaps = func() []string {
	var out []string
	for _, c := range capability.ListKnown() {
		if c <= capability.CAP_AUDIT_READ {
			out = append(out, "CAP_"+strings.ToUpper(c.String()))
		}
	}
	return out
}()

func fullCapabilitySet(bounding []string) bool {
	if len(bounding) < len(allCaps) {
		return false
	}
	have := make(map[string]bool, len(bounding))
	for _, c := range bounding {
		have[c] = true
	}
	for _, c := range allCaps {
		if !have[c] {
			return false
		}
	}
	return true
}
