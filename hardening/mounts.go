package hardening

import (
	"fmt"
	"path"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hardened-dev/hardened/profiles"
)

// Mounts: what a container may mount from the host, and which kernel
// filesystems it may mount at all.
//
// Host paths, by allowlist. runc mounts a bind mount's source (and the
// source of any mount that names an absolute path, such as a disk's
// filesystem) as root, in the host's mount namespace, before anything in
// the container runs: the spec decides which host files the container sees,
// and with what access. uid 0 without a single capability still owns every
// root-owned file there: seen through ctr under the restricted profile, a
// container wrote a setuid-root binary into a host directory bind-mounted
// read-write, which the host then ran as root. And seen through CRI on this
// project's test node: a hostPath volume of /proc at /hostproc let a uid-0
// container holding only CAP_NET_BIND_SERVICE write
// /hostproc/sys/kernel/core_pattern (the host runs that program as root on
// the next crash). So a host path is mounted only if it lies under one of
// the profile's allowed prefixes (mounts.allow_host_path_prefixes:
// containerd's CRI and the kubelet's own per-pod files, each pod reaching
// only its own through the {pod-uid}, {sandbox-id} and {container-id}
// placeholders), or under an entry of the node policy's
// allow_host_path_prefixes (the operator's consent, possibly read-only
// only). Even the operator's consent cannot open a path on the profile's
// mounts.deny_host_paths (the proc and sys trees, device nodes, the host's
// binaries and configuration, the kubelet's and the runtimes' state), under
// one, or an ancestor of one (binding / or /var exposes /var/lib/kubelet).
// Everything else is refused, and the error names the key that would allow
// it. root.path, when absolute, is a host path too (ctr run --rootfs): the
// same rule applies to it.
//
// Sources are compared as written, cleaned: the engine does no I/O. The
// shim opens every source on the host without following symlinks, pins it,
// and calls CheckMountSources with the path it opened.
//
// Kernel filesystems. A proc, sysfs, cgroup, mqueue or devpts mount is
// refused anywhere but its standard place: the masked and read-only paths
// runc applies cover /proc and /sys only, so a second procfs (seen on the
// test node: {type: proc, destination: /p2}) has a writable
// /p2/sys/kernel/core_pattern, and uid 0 needs no capability to write it.
// debugfs, tracefs, securityfs, devtmpfs (the host's device nodes), bpf,
// configfs, efivarfs, pstore, binfmt_misc and their like expose host-global
// kernel state and are refused anywhere. Under mounts.standard_filesystems_only
// every other type but tmpfs is refused too. sysfs and cgroup mounts are
// made read-only in every profile (a privileged spec has them writable:
// /sys/kernel, /sys/fs/cgroup of the host's hierarchy). Mount options are
// judged by allowlist too (mountopts.go).

// kernelFSPlaces are the kernel filesystems a container may mount, each
// only at its standard destination (containerd's default spec).
var kernelFSPlaces = map[string]string{
	"proc":    "/proc",
	"sysfs":   "/sys",
	"cgroup":  "/sys/fs/cgroup",
	"cgroup2": "/sys/fs/cgroup",
	"mqueue":  "/dev/mqueue",
	"devpts":  "/dev/pts",
}

// hostKernelFS are filesystems that expose host-global kernel state (or
// the host's device nodes) whatever the namespaces: refused anywhere.
var hostKernelFS = map[string]bool{
	"binfmt_misc": true, "bpf": true, "configfs": true, "debugfs": true,
	"devtmpfs": true, "efivarfs": true, "fusectl": true, "nsfs": true,
	"pstore": true, "securityfs": true, "selinuxfs": true, "smackfs": true,
	"tracefs": true, "autofs": true, "rpc_pipefs": true, "nfsd": true,
	"hugetlbfs": true, "xenfs": true,
}

// readOnlyFS are the filesystems made read-only in every profile.
var readOnlyFS = map[string]bool{"sysfs": true, "cgroup": true, "cgroup2": true}

// CRI annotations the allowed prefixes' placeholders are filled in from.
const (
	annotationSandboxUID = "io.kubernetes.cri.sandbox-uid"
	annotationSandboxID  = "io.kubernetes.cri.sandbox-id"
)

// hostSourced reports whether m's source is a host path: a bind mount's,
// or an absolute one (a disk's filesystem: ext4 on /dev/vda1).
func hostSourced(m specs.Mount) bool {
	return isBind(m) || strings.HasPrefix(m.Source, "/")
}

// checkMounts refuses host paths the profile denies, kernel filesystems
// out of place, and, under standard_filesystems_only, other filesystems.
// Sources are taken as written (see CheckMountSources).
func checkMounts(s *specs.Spec, cfg *Config) error {
	prof := cfg.Profile
	h := newHostPaths(cfg, s.Annotations)
	if s.Root != nil {
		if err := checkRootPath(s.Root, h, prof.Rootfs.ReadOnly); err != nil {
			return err
		}
	}
	for i, m := range s.Mounts {
		if err := checkMountOptions(m, i, cfg); err != nil {
			return err
		}
		if hostSourced(m) {
			if reason := h.reason(m.Source, readOnlyOptions(m.Options)); reason != "" {
				return refuse(RuleMounts, fmt.Sprintf("mounts[%d].source", i), "host path %q %s", m.Source, reason)
			}
			if isBind(m) {
				continue
			}
		}
		if reason := filesystemReason(m, prof); reason != "" {
			return refuse(RuleMounts, fmt.Sprintf("mounts[%d]", i), "%s mount at %q: %s", m.Type, m.Destination, reason)
		}
	}
	return nil
}

// checkRootPath applies the host path rule to an absolute root.path (read
// only if the spec or the profile makes the rootfs read-only); a relative
// one is under the bundle, unless it climbs out of it.
func checkRootPath(root *specs.Root, h hostPaths, profileReadOnly bool) error {
	if !strings.HasPrefix(root.Path, "/") {
		if hasDotDot(root.Path) {
			return refuse(RuleMounts, "root.path", "%q has a \"..\" element: it climbs out of the bundle", root.Path)
		}
		return nil
	}
	if reason := h.reason(root.Path, root.Readonly || profileReadOnly); reason != "" {
		return refuse(RuleMounts, "root.path", "host path %q %s", root.Path, reason)
	}
	return nil
}

// filesystemReason returns why a mount of a filesystem (not a bind mount)
// is refused, or "".
func filesystemReason(m specs.Mount, prof *profiles.Profile) string {
	if place, ok := kernelFSPlaces[m.Type]; ok {
		if d := path.Clean(m.Destination); d != place {
			return fmt.Sprintf("a %s filesystem is allowed only at %s: elsewhere none of the masked and read-only paths covers it (a second procfs exposes a writable /proc/sys/kernel/core_pattern: host root)", m.Type, place)
		}
		return ""
	}
	if hostKernelFS[m.Type] {
		return "this filesystem exposes host-wide kernel state (or the host's device nodes) to the container"
	}
	if prof.Mounts.StandardFilesystemsOnly && m.Type != "tmpfs" {
		return fmt.Sprintf("profile %s allows only bind mounts and tmpfs, proc, sysfs, cgroup, cgroup2, mqueue and devpts filesystems", prof.Name)
	}
	return ""
}

// hostPaths is the host path rule of a profile for one spec: the
// profile's allowed prefixes (the pod's own files) and the node policy's,
// with the spec's placeholders filled in, and the profile's denied paths.
type hostPaths struct {
	prof *profiles.Profile
	pod  []allowedPrefix // the profile's mounts.allow_host_path_prefixes
	node []allowedPrefix // the node policy's allow_host_path_prefixes
}

type allowedPrefix struct {
	entry    string // as written, for messages
	base     string
	under    bool // only what is under base, not base itself
	readOnly bool
}

func (a allowedPrefix) covers(clean string) bool {
	return isAncestor(a.base, clean) || !a.under && clean == a.base
}

func newHostPaths(cfg *Config, ann map[string]string) hostPaths {
	h := hostPaths{prof: cfg.Profile}
	add := func(list []allowedPrefix, entry string, readOnly bool) []allowedPrefix {
		if base, ok := fillPlaceholders(strings.TrimSuffix(entry, "/"), ann, cfg.ContainerID); ok {
			list = append(list, allowedPrefix{entry: entry, base: base, under: strings.HasSuffix(entry, "/"), readOnly: readOnly})
		}
		return list
	}
	for _, a := range cfg.Profile.Mounts.AllowHostPathPrefixes {
		h.pod = add(h.pod, a, false)
	}
	for _, a := range cfg.HostPaths {
		h.node = add(h.node, a.Prefix, a.ReadOnly)
	}
	return h
}

// reason returns why the host path p may not be mounted (read-only or not),
// or "".
func (h hostPaths) reason(p string, readOnly bool) string {
	clean := path.Clean(p)
	if !path.IsAbs(clean) {
		return "is not absolute"
	}
	for _, a := range h.pod {
		if a.covers(clean) {
			return ""
		}
	}
	denied := h.deniedReason(clean)
	var roOnly *allowedPrefix
	for i, a := range h.node {
		switch {
		case !a.covers(clean):
		case denied != "":
			return denied + ", and the node policy's allow_host_path_prefixes cannot allow it"
		case !a.readOnly || readOnly:
			return ""
		case roOnly == nil:
			roOnly = &h.node[i]
		}
	}
	switch {
	case roOnly != nil:
		return fmt.Sprintf("is allowed read-only only (node policy allow_host_path_prefixes entry %q), and this mount is not read-only: profile %s mounts it read-only or not at all", roOnly.entry, h.prof.Name)
	case denied != "":
		return denied
	}
	return fmt.Sprintf("is not one of the pod's own files (profile %s, mounts.allow_host_path_prefixes) nor under an entry of the node policy's allow_host_path_prefixes: host paths are mounted only with the operator's consent", h.prof.Name)
}

// deniedReason returns why the profile never lets clean be mounted, or "".
func (h hostPaths) deniedReason(clean string) string {
	for _, d := range h.prof.Mounts.DenyHostPaths {
		switch {
		case clean == d:
			return fmt.Sprintf("is %s, which profile %s never lets a container mount (mounts.deny_host_paths)", d, h.prof.Name)
		case d != "/" && isAncestor(d, clean):
			return fmt.Sprintf("is under %s, which profile %s never lets a container mount (mounts.deny_host_paths)", d, h.prof.Name)
		case isAncestor(clean, d):
			return fmt.Sprintf("holds %s, which profile %s never lets a container mount (mounts.deny_host_paths)", d, h.prof.Name)
		}
	}
	return ""
}

// fillPlaceholders replaces the placeholder elements of p with the spec's
// values; false when p has one the spec gives no usable value for (absent,
// empty, or not a single path element).
func fillPlaceholders(p string, ann map[string]string, containerID string) (string, bool) {
	if !strings.Contains(p, "{") {
		return p, true
	}
	elems := strings.Split(p, "/")
	for i, e := range elems {
		var v string
		switch e {
		case profiles.HostPathPodUID:
			v = ann[annotationSandboxUID]
		case profiles.HostPathSandboxID:
			v = ann[annotationSandboxID]
		case profiles.HostPathContainerID:
			v = containerID
		default:
			continue
		}
		if v == "" || v == "." || v == ".." || strings.ContainsAny(v, "/\x00") {
			return "", false
		}
		elems[i] = v
	}
	return strings.Join(elems, "/"), true
}

// checkMountsTamed checks that a hardened spec's mounts are as
// applyMountOptions leaves them.
func checkMountsTamed(s *specs.Spec, cfg *Config) error {
	for i, m := range s.Mounts {
		if why := tamedMountProblem(m, cfg); why != "" {
			return refuse(RuleMounts, fmt.Sprintf("mounts[%d].options", i), "%s at %q: %s", mountKind(m), m.Destination, why)
		}
	}
	if l := s.Linux; l != nil && sharedPropagation[l.RootfsPropagation] != "" {
		return refuse(RuleMounts, "linux.rootfsPropagation", "is %q", l.RootfsPropagation)
	}
	return nil
}

// CheckMountSources checks the host paths of s (every bind mount's source,
// every absolute mount source, an absolute root.path) against the host path
// rules of cfg, with each path as the host resolves it. Harden and Validate
// compare sources as written, since the engine does no I/O: a source that
// is a symlink to a denied path (/data/x -> /proc) passes them. The caller
// (the shim, in the host's mount namespace, right before the runtime
// starts) opens every such source on the host and passes resolved, which
// maps the source as the spec writes it to the absolute path of what it
// opened. A host path missing from resolved is refused (a source the
// caller could not open does not exist, and runc would fail on it anyway);
// a nil resolved checks the sources as written, like Harden. Both the
// written and the resolved path must pass. Returns a *RefusalError (rule
// "mounts") or nil.
func CheckMountSources(s *specs.Spec, cfg Config, resolved map[string]string) error {
	if s == nil || cfg.Profile == nil {
		return refuse(RuleSpec, "", "malformed spec or profile: nil")
	}
	h := newHostPaths(&cfg, s.Annotations)
	check := func(field, src string, readOnly bool) error {
		if reason := h.reason(src, readOnly); reason != "" {
			return refuse(RuleMounts, field, "host path %q %s", src, reason)
		}
		if resolved == nil {
			return nil
		}
		real, ok := resolved[src]
		switch {
		case !ok:
			return refuse(RuleMounts, field, "host path %q was not resolved on the host", src)
		case !path.IsAbs(real) || path.Clean(real) != real:
			return refuse(RuleMounts, field, "host path %q resolves to %q, which is not a clean absolute path", src, real)
		}
		if reason := h.reason(real, readOnly); reason != "" {
			return refuse(RuleMounts, field, "host path %q resolves to %q: that path %s", src, real, reason)
		}
		return nil
	}
	if s.Root != nil && strings.HasPrefix(s.Root.Path, "/") {
		if err := check("root.path", s.Root.Path, s.Root.Readonly || cfg.Profile.Rootfs.ReadOnly); err != nil {
			return err
		}
	}
	for i, m := range s.Mounts {
		if hostSourced(m) {
			if err := check(fmt.Sprintf("mounts[%d].source", i), m.Source, readOnlyOptions(m.Options)); err != nil {
				return err
			}
		}
	}
	return nil
}
