package hostfacts

import (
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// nsProcName maps the namespaces a container could join on the host to
// their name under /proc/PID/ns. user and time are left out: a container
// without its own user namespace is in the host's, which is the norm.
var nsProcName = map[specs.LinuxNamespaceType]string{
	specs.PIDNamespace:     "pid",
	specs.IPCNamespace:     "ipc",
	specs.NetworkNamespace: "net",
	specs.UTSNamespace:     "uts",
	specs.MountNamespace:   "mnt",
	specs.CgroupNamespace:  "cgroup",
}

// HostNamespaces returns the namespaces the spec joins by path that
// are the host's own. The engine can only compare paths, and /proc/2/ns/net
// (kthreadd lives in the host's namespaces) or /proc/self/root/proc/1/ns/net
// name the host's network namespace as well as /proc/1/ns/net does. A
// namespace file is identified by its nsfs device and inode, compared with
// the shim's own namespaces (containerd's, which are the node's) and, where
// it can be read, PID 1's. A spec path that cannot be stat'ed is an error:
// runc would fail on it anyway, and the container must not start on a guess.
func HostNamespaces(s *specs.Spec, procRoot string) ([]string, error) {
	if s.Linux == nil {
		return nil, nil
	}
	var host []string
	for _, ns := range s.Linux.Namespaces {
		name, ok := nsProcName[ns.Type]
		if !ok || ns.Path == "" {
			continue
		}
		var self, got unix.Stat_t
		if err := unix.Stat(procRoot+"/self/ns/"+name, &self); err != nil {
			return nil, fmt.Errorf("failed to stat the shim's %s namespace: %w", ns.Type, err)
		}
		refs := []unix.Stat_t{self}
		// PID 1's may be unreadable (a protected init); the shim's own
		// namespaces are then the reference.
		var init unix.Stat_t
		if err := unix.Stat(procRoot+"/1/ns/"+name, &init); err == nil {
			refs = append(refs, init)
		}
		if err := unix.Stat(ns.Path, &got); err != nil {
			return nil, fmt.Errorf("linux.namespaces: %s namespace path %s: %w", ns.Type, ns.Path, err)
		}
		for _, ref := range refs {
			if got.Dev == ref.Dev && got.Ino == ref.Ino {
				host = append(host, fmt.Sprintf("%s namespace path %s is the host's", ns.Type, ns.Path))
				break
			}
		}
	}
	return host, nil
}
