package hardening

import (
	"fmt"
	"path"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hardened-dev/hardened/profiles"
)

// Mount options, by allowlist.
//
// runc v1.5.2 (libcontainer/specconv parseMountOptions) reads each option
// as a mount(2) flag, a propagation change, a recursive attribute set with
// mount_setattr(2), one of its own extensions (tmpcopyup, idmap, ridmap),
// or, when it knows none of those, as filesystem data handed to the kernel
// as is. Flags are applied in order: of "ro" and "rw", "nosuid" and "suid",
// the last one wins. What each class may do here:
//   - "remount" (MS_REMOUNT) changes a mount that already exists instead of
//     making one: refused.
//   - "bind"/"rbind" make runc bind-mount the source whatever the type
//     says: on a mount whose type is not "bind" (or "none", or empty) the
//     spec says one thing and runc does another: refused.
//   - A bind mount from the host always gets "nosuid" and "nodev" ("suid"
//     and "dev" go): a setuid binary or a device node that the host (or
//     another pod) left in that directory must not work inside the
//     container.
//   - Propagation "shared"/"rshared" (on a mount, or linux.rootfsPropagation)
//     lets mounts made on one side appear on the other, the host's included:
//     Kubernetes allows Bidirectional propagation to privileged containers
//     only. Refused under namespaces.deny_privileged; elsewhere it becomes
//     "slave"/"rslave" (host to container only).
//   - A read-only rbind from the host gets "rro" on runc: "ro" makes only
//     the top mount read-only, and a submount of the host directory would
//     stay writable (runsc knows no recursive options).
//   - Recursive attributes that clear a protection from every submount
//     ("rrw", "rsuid", "rdev", "rexec") are refused; the others only add
//     one, or are about access times.
//   - "tmpcopyup" only on tmpfs; "idmap"/"ridmap" and uid/gid mappings only
//     on bind mounts, and under run_as_non_root never mapping to host uid
//     or gid 0 (files the container writes there would be the host root's).
//   - Filesystem data: only what each standard filesystem needs (tmpfs
//     size, mode, uid, gid ...; devpts newinstance, ptmxmode ...; proc
//     hidepid, subset), and SELinux context options whose type the
//     profile's selinux.mount_types allows. A filesystem type the profile
//     lets through beyond the standard ones (standard_filesystems_only off)
//     takes any data: the operator chose it.
//   - A mount at "/" hides the rootfs itself (a tmpfs there is a writable
//     root under a read-only profile): refused.
//   - A mount at one of the profile's scratch paths (restricted's /tmp and
//     /run) takes the scratch tmpfs's place: it gets the scratch's
//     protections (nosuid, nodev, and noexec where the profile says), so a
//     spec cannot trade strict's noexec /tmp for an executable one.

// mountFlagOptions are runc's mount(2) flags that may appear on any mount.
// "suid" and "dev" are taken away from host bind mounts (applyMountOptions).
var mountFlagOptions = toSet(
	"ro", "rw", "nosuid", "suid", "nodev", "dev", "noexec", "exec",
	"atime", "noatime", "relatime", "norelatime", "strictatime", "nostrictatime",
	"diratime", "nodiratime", "lazytime", "nolazytime",
	"sync", "async", "dirsync", "silent", "loud", "iversion", "noiversion",
	"mand", "nomand", "nosymfollow", "symfollow", "defaults",
)

// Propagation options (runc: mountPropagationMapping).
var (
	propagationOptions = toSet("private", "rprivate", "slave", "rslave", "unbindable", "runbindable", "shared", "rshared")
	sharedPropagation  = map[string]string{"shared": "slave", "rshared": "rslave"}
)

// Recursive attributes (runc: recAttrFlags); loosening ones are refused.
var (
	recursiveOptions = toSet(
		"rro", "rnosuid", "rnodev", "rnoexec", "rnosymfollow", "rsymfollow",
		"rnodiratime", "rdiratime", "rrelatime", "rnorelatime", "rnoatime", "ratime",
		"rstrictatime", "rnostrictatime",
	)
	loosenedRecursive = toSet("rrw", "rsuid", "rdev", "rexec")
)

// fsDataOptions are the filesystem data options each standard filesystem
// may take: a key ("size" for "size=64m") or a whole option ("newinstance").
var fsDataOptions = map[string]map[string]bool{
	"tmpfs":   toSet("size", "mode", "uid", "gid", "nr_inodes", "nr_blocks", "huge", "mpol", "inode32", "inode64", "noswap"),
	"devpts":  toSet("newinstance", "ptmxmode", "mode", "gid", "uid", "max"),
	"proc":    toSet("hidepid", "subset", "gid"),
	"mqueue":  {},
	"sysfs":   {},
	"cgroup":  {},
	"cgroup2": {},
}

// selinuxContextOptions are the mount options that label a filesystem.
var selinuxContextOptions = toSet("context", "fscontext", "defcontext", "rootcontext")

// bindTypes are the types a bind mount may carry.
var bindTypes = toSet("bind", "none", "")

func toSet(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

// lastOf reports whether the last of on and off in opts is on (def when
// neither appears): runc applies flag options in order.
func lastOf(opts []string, on, off string, def bool) bool {
	for i := len(opts) - 1; i >= 0; i-- {
		switch opts[i] {
		case on:
			return true
		case off:
			return false
		}
	}
	return def
}

// readOnlyOptions reports whether options make a mount read-only.
func readOnlyOptions(opts []string) bool { return lastOf(opts, "ro", "rw", false) }

// mountKind names a mount for messages.
func mountKind(m specs.Mount) string {
	if isBind(m) {
		return "bind mount"
	}
	return m.Type + " mount"
}

// checkMountOptions refuses what a mount's type and options would make
// runc do beyond the profile (see above).
func checkMountOptions(m specs.Mount, i int, cfg *Config) error {
	field := fmt.Sprintf("mounts[%d]", i)
	bind := isBind(m)
	switch {
	case bind && !bindTypes[m.Type]:
		// runc bind-mounts the source whatever the type says.
		return refuse(RuleMounts, field+".type", "%q with a bind option: runc bind-mounts the source whatever the type says (write type \"bind\")", m.Type)
	case !bind && m.Type == "":
		return refuse(RuleMounts, field+".type", "is empty and the mount is not a bind mount")
	case path.Clean(m.Destination) == "/":
		// A mount over the rootfs replaces it: a writable root under a
		// read-only profile.
		return refuse(RuleMounts, field+".destination", "a mount at / hides the container's root filesystem")
	}
	for _, o := range m.Options {
		if why := optionProblem(m, bind, o, cfg.Profile); why != "" {
			return refuse(RuleMounts, field+".options", "%s at %q: option %q %s", mountKind(m), m.Destination, o, why)
		}
	}
	return checkMountIDMapping(m, field, bind, cfg.Profile)
}

// optionProblem returns why option o is refused on m, or "".
func optionProblem(m specs.Mount, bind bool, o string, prof *profiles.Profile) string {
	switch {
	case o == "remount":
		return "changes a mount that already exists (MS_REMOUNT)"
	case o == "bind" || o == "rbind", mountFlagOptions[o], recursiveOptions[o]:
		return ""
	case propagationOptions[o]:
		if sharedPropagation[o] != "" && prof.Namespaces.DenyPrivileged {
			return fmt.Sprintf("would propagate mounts between the container and the host, which profile %s allows no container (Kubernetes: Bidirectional propagation is for privileged containers only)", prof.Name)
		}
		return ""
	case loosenedRecursive[o]:
		return "clears a protection from every submount"
	case o == "tmpcopyup":
		if m.Type != "tmpfs" || bind {
			return "is for tmpfs mounts only"
		}
		return ""
	case o == "idmap" || o == "ridmap":
		if !bind {
			return "is for bind mounts only"
		}
		return ""
	}
	key, value, _ := strings.Cut(o, "=")
	if selinuxContextOptions[key] && !bind {
		return selinuxContextProblem(value, prof)
	}
	allowed, standard := fsDataOptions[m.Type]
	switch {
	case bind:
		return "is not an option runc knows for a bind mount"
	case !standard && !prof.Mounts.StandardFilesystemsOnly:
		return "" // the profile lets this filesystem through: its data is the operator's call
	case allowed[key]:
		return ""
	}
	return fmt.Sprintf("is not an option a %s mount may take here", m.Type)
}

// selinuxContextProblem judges the label of a context= mount option.
func selinuxContextProblem(label string, prof *profiles.Profile) string {
	label = strings.Trim(label, `"`)
	if why := selinuxTypeProblem(label, prof.SELinux.MountTypes, "selinux.mount_types", prof.Name); why != "" {
		return "labels the filesystem " + why
	}
	return ""
}

// checkMountIDMapping refuses an idmapped mount that is not a bind mount,
// and under run_as_non_root one that maps anything to host uid or gid 0.
func checkMountIDMapping(m specs.Mount, field string, bind bool, prof *profiles.Profile) error {
	if len(m.UIDMappings) == 0 && len(m.GIDMappings) == 0 {
		return nil
	}
	if !bind {
		return refuse(RuleMounts, field+".uidMappings", "idmapped mounts are for bind mounts only")
	}
	if !prof.Process.RunAsNonRoot {
		return nil
	}
	for _, set := range []struct {
		name string
		maps []specs.LinuxIDMapping
	}{{"uidMappings", m.UIDMappings}, {"gidMappings", m.GIDMappings}} {
		if mapsHostRoot(set.maps) {
			// Files the container creates there would belong to the
			// host's root.
			return refuse(RuleMounts, field+"."+set.name, "maps an ID to host ID 0, and profile %s runs no process as root", prof.Name)
		}
	}
	return nil
}

// mapsHostRoot reports whether a mapping covers host ID 0.
func mapsHostRoot(maps []specs.LinuxIDMapping) bool {
	for _, mp := range maps {
		if mp.HostID == 0 && mp.Size > 0 {
			return true
		}
	}
	return false
}

// applyMountOptions tightens every mount's options (see above): sysfs and
// cgroup read-only, host bind mounts nosuid and nodev, shared propagation
// slave, a mount at a scratch path as protected as the scratch tmpfs.
func applyMountOptions(s *specs.Spec, cfg *Config, r *Report) {
	for i := range s.Mounts {
		m := &s.Mounts[i]
		opts := tamedOptions(*m, cfg)
		if !slices.Equal(opts, m.Options) {
			r.change(RuleMounts, fmt.Sprintf("mounts[%d].options", i), strings.Join(m.Options, ","), strings.Join(opts, ","))
			m.Options = opts
		}
	}
	if l := s.Linux; l != nil {
		if to := sharedPropagation[l.RootfsPropagation]; to != "" {
			r.change(RuleMounts, "linux.rootfsPropagation", l.RootfsPropagation, to)
			l.RootfsPropagation = to
		}
	}
}

// tamedOptions returns m's options as applyMountOptions leaves them; m's
// own slice when nothing changes.
func tamedOptions(m specs.Mount, cfg *Config) []string {
	prof := cfg.Profile
	opts := m.Options
	edit := func(drop map[string]bool, add ...string) {
		out := slices.DeleteFunc(slices.Clone(opts), func(o string) bool { return drop[o] })
		for _, a := range add {
			if !slices.Contains(out, a) {
				out = append(out, a)
			}
		}
		if !slices.Equal(out, opts) {
			opts = out
		}
	}
	if readOnlyFS[m.Type] && !isBind(m) && !readOnlyOptions(opts) {
		edit(toSet("rw"), "ro")
	}
	if hostSourced(m) && (!lastOf(opts, "nosuid", "suid", false) || !lastOf(opts, "nodev", "dev", false)) {
		edit(toSet("suid", "dev"), "nosuid", "nodev")
	}
	if cfg.Runtime != profiles.RuntimeGVisor && hostSourced(m) && slices.Contains(opts, "rbind") && readOnlyOptions(opts) && !slices.Contains(opts, "rro") {
		// "ro" on an rbind makes only its top mount read-only (runc); rro
		// makes every submount so too. runsc knows no recursive options.
		edit(nil, "rro")
	}
	for i, o := range opts {
		if to := sharedPropagation[o]; to != "" {
			opts = slices.Clone(opts)
			opts[i] = to
		}
	}
	if sc, ok := scratchAt(m.Destination, prof); ok && !scratchProtected(opts, sc) {
		add := []string{"nosuid", "nodev"}
		drop := toSet("suid", "dev")
		if sc.NoExec {
			add = append(add, "noexec")
			drop["exec"] = true
		}
		edit(drop, add...)
	}
	return opts
}

// scratchAt returns the profile's scratch mount at dest (only where the
// profile makes the rootfs read-only: elsewhere it adds none).
func scratchAt(dest string, prof *profiles.Profile) (profiles.Scratch, bool) {
	if !prof.Rootfs.ReadOnly {
		return profiles.Scratch{}, false
	}
	d := path.Clean(dest)
	for _, sc := range prof.Rootfs.Scratch {
		if path.Clean(sc.Path) == d {
			return sc, true
		}
	}
	return profiles.Scratch{}, false
}

func scratchProtected(opts []string, sc profiles.Scratch) bool {
	return lastOf(opts, "nosuid", "suid", false) && lastOf(opts, "nodev", "dev", false) &&
		(!sc.NoExec || lastOf(opts, "noexec", "exec", false))
}

// tamedMountProblem returns what applyMountOptions would still change on
// m, or "": a hardened spec's mounts are all tamed.
func tamedMountProblem(m specs.Mount, cfg *Config) string {
	opts := tamedOptions(m, cfg)
	if slices.Equal(opts, m.Options) {
		return ""
	}
	return fmt.Sprintf("options %q are not as profile %s leaves them (%q)", strings.Join(m.Options, ","), cfg.Profile.Name, strings.Join(opts, ","))
}

// checkRootfsPropagation refuses an unknown linux.rootfsPropagation, and a
// shared one under deny_privileged.
func checkRootfsPropagation(l *specs.Linux, prof *profiles.Profile) error {
	if l == nil || l.RootfsPropagation == "" {
		return nil
	}
	p := l.RootfsPropagation
	switch {
	case !propagationOptions[p]:
		return refuse(RuleMounts, "linux.rootfsPropagation", "%q is not a propagation type", p)
	case sharedPropagation[p] != "" && prof.Namespaces.DenyPrivileged:
		return refuse(RuleMounts, "linux.rootfsPropagation", "%q would propagate mounts between the container and the host, which profile %s allows no container", p, prof.Name)
	}
	return nil
}
