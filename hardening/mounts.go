package hardening

import (
	"fmt"
	"path"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hardened-dev/hardened/profiles"
)

// Mounts: what a container may mount from the host, and which kernel
// filesystems it may mount at all.
//
// Host paths. runc mounts a bind mount's source (and the source of any
// mount that names an absolute path, such as a disk's filesystem) as root,
// in the host's mount namespace, before anything in the container runs: the
// spec decides which host files the container sees, and with what access.
// Seen through CRI on this project's test node: a hostPath volume of /proc at
// /hostproc let a uid-0 container holding only CAP_NET_BIND_SERVICE write
// /hostproc/sys/kernel/core_pattern (the host runs that program as root on
// the next crash: host code execution); one of / at /host made
// /host/etc/shadow writable. A source that is one of the profile's denied
// paths (mounts.deny_host_paths), under one, or an ancestor of one (binding
// / or /var exposes /var/lib/kubelet) is refused, unless it lies in one of
// the profile's allowed prefixes (containerd's CRI and the kubelet's own
// per-pod files, each pod reaching only its own). root.path, when absolute,
// is a host path too (ctr run --rootfs): the same rule applies to it.
//
// Sources are compared as written, cleaned: the engine does no I/O. A
// source that is a symlink to a denied path passes here; the shim resolves
// every source on the host and calls CheckMountSources with the results.
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
// /sys/kernel, /sys/fs/cgroup of the host's hierarchy).

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
func checkMounts(s *specs.Spec, prof *profiles.Profile) error {
	h := newHostPaths(prof, s.Annotations)
	if s.Root != nil {
		if err := checkRootPath(s.Root.Path, h); err != nil {
			return err
		}
	}
	for i, m := range s.Mounts {
		if hostSourced(m) {
			if reason := h.reason(m.Source); reason != "" {
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

// checkRootPath applies the host path rule to an absolute root.path; a
// relative one is under the bundle, unless it climbs out of it.
func checkRootPath(root string, h hostPaths) error {
	if !strings.HasPrefix(root, "/") {
		if hasDotDot(root) {
			return refuse(RuleMounts, "root.path", "%q has a \"..\" element: it climbs out of the bundle", root)
		}
		return nil
	}
	if reason := h.reason(root); reason != "" {
		return refuse(RuleMounts, "root.path", "host path %q %s", root, reason)
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

// hostPaths is the host path rule of a profile for one spec: its denied
// paths, and its allowed prefixes with the spec's placeholders filled in.
type hostPaths struct {
	prof  *profiles.Profile
	allow []allowedPrefix
}

type allowedPrefix struct {
	base  string
	under bool // only what is under base, not base itself
}

func newHostPaths(prof *profiles.Profile, ann map[string]string) hostPaths {
	h := hostPaths{prof: prof}
	if len(prof.Mounts.DenyHostPaths) == 0 {
		return h
	}
	h.allow = make([]allowedPrefix, 0, len(prof.Mounts.AllowHostPathPrefixes))
	for _, a := range prof.Mounts.AllowHostPathPrefixes {
		if base, ok := fillPlaceholders(strings.TrimSuffix(a, "/"), ann); ok {
			h.allow = append(h.allow, allowedPrefix{base: base, under: strings.HasSuffix(a, "/")})
		}
	}
	return h
}

// reason returns why the host path p may not be mounted, or "".
func (h hostPaths) reason(p string) string {
	if len(h.prof.Mounts.DenyHostPaths) == 0 {
		return ""
	}
	clean := path.Clean(p)
	if !path.IsAbs(clean) {
		return "is not absolute"
	}
	for _, a := range h.allow {
		if isAncestor(a.base, clean) || !a.under && clean == a.base {
			return ""
		}
	}
	for _, d := range h.prof.Mounts.DenyHostPaths {
		switch {
		case clean == d:
			return fmt.Sprintf("is %s, which profile %s does not let a container mount", d, h.prof.Name)
		case d != "/" && isAncestor(d, clean):
			return fmt.Sprintf("is under %s, which profile %s does not let a container mount", d, h.prof.Name)
		case isAncestor(clean, d):
			return fmt.Sprintf("holds %s, which profile %s does not let a container mount", d, h.prof.Name)
		}
	}
	return ""
}

// hostPathReason is hostPaths.reason for one path.
func hostPathReason(p string, ann map[string]string, prof *profiles.Profile) string {
	return newHostPaths(prof, ann).reason(p)
}

// fillPlaceholders replaces the placeholder elements of p with the spec's
// values; false when p has one the spec gives no usable value for (absent,
// empty, or not a single path element).
func fillPlaceholders(p string, ann map[string]string) (string, bool) {
	if !strings.Contains(p, "{") {
		return p, true
	}
	elems := strings.Split(p, "/")
	for i, e := range elems {
		var key string
		switch e {
		case profiles.HostPathPodUID:
			key = annotationSandboxUID
		case profiles.HostPathSandboxID:
			key = annotationSandboxID
		default:
			continue
		}
		v := ann[key]
		if v == "" || v == "." || v == ".." || strings.ContainsAny(v, "/\x00") {
			return "", false
		}
		elems[i] = v
	}
	return strings.Join(elems, "/"), true
}

// applyMountOptions makes every sysfs and cgroup mount read-only: "rw"
// options go (runc applies options in order, so a later "rw" would undo
// "ro"), "ro" is added. containerd makes them writable for a privileged
// container only.
func applyMountOptions(s *specs.Spec, r *Report) {
	for i := range s.Mounts {
		m := &s.Mounts[i]
		if !readOnlyFS[m.Type] || isBind(*m) || readOnlyOptions(m.Options) {
			continue
		}
		before := strings.Join(m.Options, ",")
		opts := slices.DeleteFunc(slices.Clone(m.Options), func(o string) bool { return o == "rw" })
		if !slices.Contains(opts, "ro") {
			opts = append(opts, "ro")
		}
		m.Options = opts
		r.change(RuleMounts, fmt.Sprintf("mounts[%d].options", i), before, strings.Join(opts, ","))
	}
}

func readOnlyOptions(opts []string) bool {
	return slices.Contains(opts, "ro") && !slices.Contains(opts, "rw")
}

// checkMountsHardened checks a hardened spec's mounts: checkMounts, and
// sysfs and cgroup read-only.
func checkMountsHardened(s *specs.Spec, prof *profiles.Profile) error {
	if err := checkMounts(s, prof); err != nil {
		return err
	}
	for i, m := range s.Mounts {
		if readOnlyFS[m.Type] && !isBind(m) && !readOnlyOptions(m.Options) {
			return refuse(RuleMounts, fmt.Sprintf("mounts[%d].options", i), "%s at %q is not read-only", m.Type, m.Destination)
		}
	}
	return nil
}

// CheckMountSources checks the host paths of s (every bind mount's source,
// every absolute mount source, an absolute root.path) against the host path
// rules of profile p, with each path as the host resolves it. Harden and
// Validate compare sources as written, since the engine does no I/O: a
// source that is a symlink to a denied path (/data/x -> /proc) passes
// them. The caller (the shim, in the host's mount namespace, right before
// the runtime starts) resolves every such source with
// filepath.EvalSymlinks and passes resolved, which maps the source as the
// spec writes it to the absolute path it resolves to. A host path missing
// from resolved is refused (a source the caller could not resolve does not
// exist, and runc would fail on it anyway); a nil resolved checks the
// sources as written, like Harden. Both the written and the resolved path
// must pass. Returns a *RefusalError (rule "mounts") or nil.
func CheckMountSources(s *specs.Spec, p *profiles.Profile, resolved map[string]string) error {
	if s == nil || p == nil {
		return refuse(RuleSpec, "", "malformed spec or profile: nil")
	}
	h := newHostPaths(p, s.Annotations)
	check := func(field, src string) error {
		if reason := h.reason(src); reason != "" {
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
		if reason := h.reason(real); reason != "" {
			return refuse(RuleMounts, field, "host path %q resolves to %q: that path %s", src, real, reason)
		}
		return nil
	}
	if s.Root != nil && strings.HasPrefix(s.Root.Path, "/") {
		if err := check("root.path", s.Root.Path); err != nil {
			return err
		}
	}
	for i, m := range s.Mounts {
		if hostSourced(m) {
			if err := check(fmt.Sprintf("mounts[%d].source", i), m.Source); err != nil {
				return err
			}
		}
	}
	return nil
}
