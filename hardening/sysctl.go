package hardening

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hardened-dev/hardened/profiles"
)

// Sysctls. runc writes every entry of linux.sysctl under /proc/sys as root,
// from inside the container's namespaces but before it drops capabilities:
// a sysctl that is not namespaced (kernel.core_pattern, vm.*, fs.* but
// fs.mqueue.*) would change the node for everyone. Only the namespaced
// ones pass, and each only when the container has that namespace of its
// own (a new one, or the pod's joined by a path that is not the node's):
//   - net.*: the network namespace;
//   - kernel.msgmax, kernel.msgmnb, kernel.msgmni, kernel.sem,
//     kernel.shmall, kernel.shmmax, kernel.shmmni, kernel.shm_rmid_forced
//     and fs.mqueue.*: the IPC namespace;
//   - kernel.hostname, kernel.domainname: the UTS namespace.
// On top of that a profile may restrict them to a list (restricted:
// Kubernetes' safe sysctls). A name must have Kubernetes' sysctl syntax
// (dot- or slash-separated names of a-z, 0-9, "-" and "_"): runc turns the
// dots into path separators, and nothing may climb out of /proc/sys.

// sysctlNameRE is Kubernetes' sysctl name syntax (k8s.io/kubernetes
// pkg/apis/core/validation: SysctlContainSlashPatternFmt).
var sysctlNameRE = regexp.MustCompile(`^([a-z0-9]([-_a-z0-9]*[a-z0-9])?[\./])*[a-z0-9]([-_a-z0-9]*[a-z0-9])?$`)

// ipcSysctls are the IPC namespace's sysctls outside fs.mqueue.*.
var ipcSysctls = toSet("kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
	"kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced")

// sysctlNamespace returns the namespace a sysctl belongs to, or "" when it
// is not namespaced.
func sysctlNamespace(name string) specs.LinuxNamespaceType {
	// Kubernetes writes a dot inside an element (an interface name) as "/".
	canon := strings.ReplaceAll(name, "/", ".")
	switch {
	case strings.HasPrefix(canon, "net."):
		return specs.NetworkNamespace
	case ipcSysctls[canon], strings.HasPrefix(canon, "fs.mqueue."):
		return specs.IPCNamespace
	case canon == "kernel.hostname", canon == "kernel.domainname":
		return specs.UTSNamespace
	}
	return ""
}

// ownsNamespace reports whether the spec gives the container a namespace
// of type t of its own: a new one, or one joined by a path that does not
// name the node's (the shim also compares joined namespaces with the
// node's by identity).
func ownsNamespace(l *specs.Linux, t specs.LinuxNamespaceType) bool {
	if l == nil {
		return false
	}
	for _, ns := range l.Namespaces {
		if ns.Type == t {
			return !hostNamespacePath(ns.Path)
		}
	}
	return false
}

// sysctlAllowed reports whether the profile's list allows name.
func sysctlAllowed(name string, s *profiles.Sysctls) bool {
	if !s.Restrict {
		return true
	}
	canon := strings.ReplaceAll(name, "/", ".")
	for _, a := range s.Allowed {
		if p, ok := strings.CutSuffix(a, "*"); ok && strings.HasPrefix(canon, p) || a == canon {
			return true
		}
	}
	return false
}

// checkSysctls refuses every sysctl the rules above do not allow. Names
// are checked in order, so the refusal is deterministic.
func checkSysctls(l *specs.Linux, prof *profiles.Profile) error {
	if l == nil {
		return nil
	}
	names := make([]string, 0, len(l.Sysctl))
	for k := range l.Sysctl {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, n := range names {
		if why := sysctlProblem(n, l, prof); why != "" {
			return refuse(RuleSysctls, "linux.sysctl."+n, "%s", why)
		}
	}
	return nil
}

func sysctlProblem(name string, l *specs.Linux, prof *profiles.Profile) string {
	if !sysctlNameRE.MatchString(name) {
		return "is not a sysctl name"
	}
	ns := sysctlNamespace(name)
	switch {
	case ns == "":
		// runc would write it as root: the node's setting, for everyone.
		return "is not namespaced: writing it changes the node"
	case !ownsNamespace(l, ns):
		return fmt.Sprintf("belongs to the %s namespace, and the container has none of its own: writing it changes the node's", ns)
	case !sysctlAllowed(name, &prof.Sysctls):
		return fmt.Sprintf("is not allowed by profile %s (sysctls.allowed: %s)", prof.Name, strings.Join(prof.Sysctls.Allowed, ", "))
	}
	return ""
}
