package hardening

import (
	"fmt"
	"path"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hardened-dev/hardened/profiles"
)

// Spec fields that runc (v1.5.2) or runsc act on as root and that no rule
// elsewhere covers. Each is judged by what the runtime does with it:
//   - windows, solaris, vm, zos, freebsd, process.commandLine and
//     process.user.username belong to other platforms: runc ignores them and
//     runsc refuses some. A spec carrying them was not written for this
//     runtime: refused.
//   - A container without a mount namespace of its own: runc then makes the
//     spec's mounts in the host's mount namespace and chroots instead of
//     pivoting. One joined by path (the mount namespace of a process on the
//     node) is the same: CRI never sets either. Refused under every profile.
//   - hostname/domainname in a UTS namespace joined by a path that names
//     the node's: runc sets the node's hostname. Refused.
//   - linux.uidMappings/gidMappings that map host ID 0 under
//     run_as_non_root: the container's files (and its process, before the
//     profile's uid check) would be the host root's. Refused.
//   - linux.netDevices: runc takes a host network interface (eth0, the
//     CNI bridge) from the node and moves it into the container, as root,
//     with no allowlist. Refused under every profile.
//   - linux.personality: runc accepts the LINUX and LINUX32 domains and
//     ignores flags (with a warning): any flag is refused rather than
//     silently dropped; another domain is refused.
//   - linux.timeOffsets: runc writes them into a new time namespace only;
//     offsets without one are refused (runc would fail after making
//     cgroups).
//   - linux.devices paths: runc creates the nodes inside the rootfs, but
//     runsc bind-mounts the host's node of a device path it proxies (GPUs,
//     TPUs, VFIO, RDMA), judged by a path prefix it does not clean. A path
//     must be clean, absolute and under /dev; on gVisor one runsc proxies
//     must be a device the profile allows by its numbers.

// platformFields are the spec's parts for other platforms.
func platformFields(s *specs.Spec) []string {
	var set []string
	for _, f := range []struct {
		name string
		on   bool
	}{
		{"windows", s.Windows != nil}, {"solaris", s.Solaris != nil}, {"vm", s.VM != nil},
		{"zos", s.ZOS != nil}, {"freebsd", s.FreeBSD != nil},
		{"process.commandLine", s.Process != nil && s.Process.CommandLine != ""},
		{"process.user.username", s.Process != nil && s.Process.User.Username != ""},
	} {
		if f.on {
			set = append(set, f.name)
		}
	}
	return set
}

func checkPlatform(s *specs.Spec) error {
	if set := platformFields(s); len(set) > 0 {
		return refuse(RuleSpec, set[0], "is for another platform: runc ignores it, and this spec was not written for a Linux runtime")
	}
	return nil
}

// namespace returns the spec's namespace of type t, or nil.
func namespace(l *specs.Linux, t specs.LinuxNamespaceType) *specs.LinuxNamespace {
	if l == nil {
		return nil
	}
	for i := range l.Namespaces {
		if l.Namespaces[i].Type == t {
			return &l.Namespaces[i]
		}
	}
	return nil
}

// checkNamespaceRules applies the namespace rules above (host namespaces
// under deny_host: namespaces.go).
func checkNamespaceRules(s *specs.Spec, prof *profiles.Profile) error {
	l := s.Linux
	switch mnt := namespace(l, specs.MountNamespace); {
	case mnt == nil:
		// runc would mount the spec's mounts in the host's mount namespace.
		return refuse(RuleNamespaces, "linux.namespaces", "no mount namespace: runc would make the container's mounts in the host's mount namespace")
	case mnt.Path != "":
		return refuse(RuleNamespaces, "linux.namespaces", "mount namespace path %q: a container gets a mount namespace of its own, never one that exists on the node", mnt.Path)
	}
	for _, ns := range l.Namespaces {
		if ns.Path != "" && (!path.IsAbs(ns.Path) || strings.ContainsRune(ns.Path, 0)) {
			return refuse(RuleNamespaces, "linux.namespaces", "%s namespace path %q is not absolute", ns.Type, ns.Path)
		}
	}
	if s.Hostname != "" || s.Domainname != "" {
		if uts := namespace(l, specs.UTSNamespace); uts != nil && hostNamespacePath(uts.Path) {
			// runc would set the node's hostname.
			return refuse(RuleNamespaces, "hostname", "is set in the UTS namespace %q, which is the node's", uts.Path)
		}
	}
	if prof.Process.RunAsNonRoot && l != nil {
		if mapsHostRoot(l.UIDMappings) {
			return refuse(RuleNamespaces, "linux.uidMappings", "maps an ID to host uid 0, and profile %s runs no process as root", prof.Name)
		}
		if mapsHostRoot(l.GIDMappings) {
			return refuse(RuleNamespaces, "linux.gidMappings", "maps an ID to host gid 0, and profile %s runs no process as root", prof.Name)
		}
	}
	return nil
}

// personalityDomains are the domains runc accepts.
var personalityDomains = []specs.LinuxPersonalityDomain{specs.PerLinux, specs.PerLinux32}

// checkLinuxMisc applies the netDevices, personality and timeOffsets rules.
func checkLinuxMisc(l *specs.Linux) error {
	if l == nil {
		return nil
	}
	if len(l.NetDevices) > 0 {
		// runc moves the host's interface into the container, as root.
		names := make([]string, 0, len(l.NetDevices))
		for n := range l.NetDevices {
			names = append(names, n)
		}
		slices.Sort(names)
		return refuse(RuleNamespaces, "linux.netDevices", "would take the host network interface %q from the node", names[0])
	}
	if p := l.Personality; p != nil {
		switch {
		case !slices.Contains(personalityDomains, p.Domain):
			return refuse(RuleProcess, "linux.personality.domain", "%q is not LINUX or LINUX32", p.Domain)
		case len(p.Flags) > 0:
			return refuse(RuleProcess, "linux.personality.flags", "runc ignores personality flags (%v): refused rather than dropped", p.Flags)
		}
	}
	if len(l.TimeOffsets) > 0 {
		if ns := namespace(l, specs.TimeNamespace); ns == nil || ns.Path != "" {
			return refuse(RuleNamespaces, "linux.timeOffsets", "need a new time namespace of the container's own")
		}
	}
	return nil
}

// runscProxiedDevices are the device path prefixes for which runsc binds
// the host's device node into the sandbox (nvproxy, tpuproxy, rdmaproxy).
var runscProxiedDevices = []string{"/dev/nvidia", "/dev/accel", "/dev/vfio", "/dev/infiniband"}

// checkDevicePaths applies the linux.devices path rule above.
func checkDevicePaths(l *specs.Linux, cfg *Config) error {
	if l == nil {
		return nil
	}
	pol := newDevicePolicy(cfg.Profile)
	for i, d := range l.Devices {
		field := fmt.Sprintf("linux.devices[%d].path", i)
		if !path.IsAbs(d.Path) || path.Clean(d.Path) != d.Path || !isAncestor("/dev", d.Path) {
			return refuse(RuleDevices, field, "%q is not a clean path under /dev", d.Path)
		}
		if cfg.Runtime != profiles.RuntimeGVisor || !hasAnyPrefix(d.Path, runscProxiedDevices) {
			continue
		}
		typ := byte('c')
		if d.Type == "b" {
			typ = 'b'
		}
		if !pol.granted(typ, d.Major, d.Minor) {
			// runsc would bind the host's node of that path, whatever the numbers say.
			return refuse(RuleDevices, field, "%q is a device runsc passes through from the host, and profile %s's devices.allowed does not allow it", d.Path, cfg.Profile.Name)
		}
	}
	return nil
}

// granted reports whether the profile's devices.allowed (not the default
// set) allows the device.
func (p devicePolicy) granted(typ byte, major, minor int64) bool {
	for _, e := range p.prof.Devices.Allowed {
		if d, err := profiles.ParseDevice(e); err == nil && d.Type == typ && d.Major == major && (d.Minor < 0 || d.Minor == minor) {
			return true
		}
	}
	return false
}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}
