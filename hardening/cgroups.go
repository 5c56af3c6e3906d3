package hardening

import (
	"path"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Cgroups: where runc puts the container, and what it writes there as
// root (runc v1.5.2 with opencontainers/cgroups v0.1.0).
//
// linux.cgroupsPath. With the cgroupfs driver an absolute path names any
// cgroup of the host (/sys/fs/cgroup/<path>): the root cgroup, another
// pod's, system.slice; a relative one is taken from runc's own cgroup (the
// shim's). runc adopts a cgroup that exists and is empty, writes the spec's
// limits into it, and removes it on delete. A container outside its pod's
// cgroup escapes the pod's limits (memory, pids, CPU) that the kubelet set
// on the pod's parent. So the path must be absolute and clean, its last
// element (or the name of systemd's "slice:prefix:name") must be the
// container's own ID (a new cgroup, never another container's or a
// parent), and an app container of a pod must sit next to its sandbox
// (the same parent cgroup, or the same slice). The empty path (runc: the
// container ID under runc's own cgroup) stays.
//
// linux.resources.unified: runc writes each key as a file name into the
// container's cgroup, as root, whatever it is: cgroup.procs,
// cgroup.subtree_control, cgroup.kill, cgroup.type, cpuset.cpus.partition
// (which takes CPUs from every other cgroup). Only the resource files of
// the cpu, memory, io and hugetlb controllers and cpuset.cpus/cpuset.mems
// may be set, at create as at update (pids.max: pids.go).
//
// linux.resources.network (cgroup v1 net_cls classid and net_prio): the
// node's firewall and traffic control rules match packets by classid, so
// a container choosing its class chooses how the node treats its traffic.
// Refused (CRI never sets it).
//
// linux.intelRdt: runc joins (or creates) the resctrl group named by
// closID under /sys/fs/resctrl; with a schema it rewrites that group's
// cache and memory bandwidth allocation, as root, for every task in it. A
// closID of "/" is the root group. So closID must be a plain name, and a
// schema is allowed only for the container's own new group (no closID).

// unifiedAllowed reports whether key is a cgroup v2 file a spec or an
// update may write through resources.unified.
func unifiedAllowed(key string) bool {
	if strings.ContainsAny(key, "/\x00") {
		return false
	}
	switch {
	case key == "cpuset.cpus", key == "cpuset.mems":
		return true
	case strings.HasPrefix(key, "cpu.") && !strings.HasPrefix(key, "cpu.stat"):
		return true
	}
	for _, p := range []string{"memory.", "io.", "hugetlb."} {
		if strings.HasPrefix(key, p) {
			return true
		}
	}
	return false
}

// unifiedAllowedText describes unifiedAllowed for messages.
const unifiedAllowedText = "cpu.*, memory.*, io.*, hugetlb.*, cpuset.cpus, cpuset.mems; pids.max only within the pids limit"

// checkUnified refuses unified keys outside the allowlist; keys are
// checked in order. pids.max is the pids rule's (it is lowered there).
func checkUnified(unified map[string]string, field string) error {
	keys := make([]string, 0, len(unified))
	for k := range unified {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if k == unifiedPidsMax {
			continue
		}
		if !unifiedAllowed(k) {
			// runc writes the key as a file name in the container's
			// cgroup, as root.
			return refuse(RuleCgroups, field+"."+k, "is not a resource file a container may set (allowed: %s)", unifiedAllowedText)
		}
	}
	return nil
}

// checkCgroups applies the rules above to a spec.
func checkCgroups(l *specs.Linux, cfg *Config) error {
	if l == nil {
		return nil
	}
	if err := checkCgroupsPath(l.CgroupsPath, cfg); err != nil {
		return err
	}
	if r := l.Resources; r != nil {
		if err := checkUnified(r.Unified, "linux.resources.unified"); err != nil {
			return err
		}
		if r.Network != nil && (r.Network.ClassID != nil || len(r.Network.Priorities) > 0) {
			// The node's firewall and tc rules match on net_cls classid.
			return refuse(RuleCgroups, "linux.resources.network", "sets the net_cls class or net_prio priorities, which the node's firewall and traffic control match on")
		}
	}
	return checkIntelRdt(l.IntelRdt)
}

// checkCgroupsPath applies the cgroupsPath rule (see above).
func checkCgroupsPath(p string, cfg *Config) error {
	if p == "" {
		return nil
	}
	const field = "linux.cgroupsPath"
	parent, leaf, systemd, ok := splitCgroupsPath(p)
	if !ok {
		return refuse(RuleCgroups, field, "%q is neither a clean absolute cgroup path nor systemd's slice:prefix:name", p)
	}
	if cfg.ContainerID != "" && leaf != cfg.ContainerID {
		// Another container's cgroup, or a parent (the root cgroup, a pod's):
		// runc adopts an existing empty cgroup and writes the limits there.
		return refuse(RuleCgroups, field, "%q does not end in the container's ID %q: the container must get a cgroup of its own", p, cfg.ContainerID)
	}
	if sb := cfg.SandboxCgroupsPath; sb != "" {
		sbParent, _, sbSystemd, ok := splitCgroupsPath(sb)
		if !ok || sbSystemd != systemd || sbParent != parent {
			// Outside the pod's cgroup, the container escapes the pod's limits.
			return refuse(RuleCgroups, field, "%q is not next to its pod sandbox's cgroup %q: it would escape the pod's limits", p, sb)
		}
	}
	return nil
}

// splitCgroupsPath splits a cgroupfs path into its parent and last element,
// or systemd's "slice:prefix:name" into slice and name.
func splitCgroupsPath(p string) (parent, leaf string, systemd, ok bool) {
	if strings.ContainsRune(p, 0) {
		return "", "", false, false
	}
	if strings.Contains(p, ":") {
		parts := strings.Split(p, ":")
		if len(parts) != 3 || parts[2] == "" || strings.ContainsRune(p, '/') || parts[2] == "." || parts[2] == ".." {
			return "", "", true, false
		}
		return parts[0], parts[2], true, true
	}
	if !path.IsAbs(p) || path.Clean(p) != p || p == "/" {
		return "", "", false, false
	}
	return path.Dir(p), path.Base(p), false, true
}

// checkIntelRdt applies the resctrl rule (see above).
func checkIntelRdt(r *specs.LinuxIntelRdt) error {
	if r == nil {
		return nil
	}
	const field = "linux.intelRdt"
	id := r.ClosID
	if id != "" && (id == "." || id == ".." || strings.ContainsAny(id, "/\x00")) {
		// "/" is the resctrl root group: the node's default allocation.
		return refuse(RuleCgroups, field+".closID", "%q is not a plain resctrl group name", id)
	}
	if id != "" && (r.L3CacheSchema != "" || r.MemBwSchema != "" || len(r.Schemata) > 0) {
		// runc would rewrite an existing group's allocation for every task in it.
		return refuse(RuleCgroups, field, "sets a schema for the existing resctrl group %q, which would change the allocation of every task in it", id)
	}
	return nil
}
