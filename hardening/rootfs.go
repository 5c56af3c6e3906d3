package hardening

import (
	"path"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hardened-dev/hardened/profiles"
)

// applyRootfs makes the root filesystem read-only when the profile says
// so: a compromised process can then neither plant a binary or a library
// in the image's paths nor tamper with the image's configuration. Writable
// scratch space comes from tmpfs mounts (nosuid, nodev, and noexec where
// the profile says, so that nothing dropped there can be executed), added
// only on a read-only rootfs and only where the spec mounts nothing at that
// path already (a volume the pod asked for wins). A read-only rootfs in the
// spec stays read-only whatever the profile says. A scratch directory that
// holds a copy of the image's content (CopyUp: runc's tmpcopyup) starts
// empty on gVisor: runsc ignores tmpcopyup, and the report says so.
func applyRootfs(s *specs.Spec, cfg *Config, r *Report) {
	prof := cfg.Profile
	if prof.Rootfs.ReadOnly && !s.Root.Readonly {
		s.Root.Readonly = true
		r.change(RuleRootfs, "root.readonly", "false", "true")
	}
	if !s.Root.Readonly {
		return
	}
	var added []string
	for _, sc := range prof.Rootfs.Scratch {
		dest := path.Clean(sc.Path)
		if !path.IsAbs(dest) || dest == "/" || mountsAt(s.Mounts, dest) {
			continue
		}
		if sc.CopyUp && cfg.Runtime == profiles.RuntimeGVisor {
			sc.CopyUp = false
			r.gap(RuleRootfs, "scratch "+dest+" starts empty: runsc ignores tmpcopyup, so the image's content there is not copied in")
		}
		m := scratchMount(dest, sc)
		// Mounts are applied in order, and a mount hides whatever was
		// mounted below its destination before it: insert the tmpfs
		// before every mount except those at one of its ancestors, so that
		// a volume under it (/run/secrets/... under /run) stays visible.
		// Placing it that early also covers volumes that reach it through
		// a symlink in the image (/var/run/secrets/... with /var/run ->
		// /run), which no lexical comparison could see. Scratch mounts
		// keep the profile's order among themselves.
		i := 0
		for j, o := range s.Mounts {
			od := path.Clean(o.Destination)
			if isAncestor(od, dest) || slices.Contains(added, od) && !isAncestor(dest, od) {
				i = j + 1
			}
		}
		added = append(added, dest)
		s.Mounts = append(s.Mounts[:i], append([]specs.Mount{m}, s.Mounts[i:]...)...)
		r.change(RuleRootfs, "mounts", "", "tmpfs at "+dest+" ("+strings.Join(m.Options, ",")+")")
	}
}

func scratchMount(dest string, sc profiles.Scratch) specs.Mount {
	opts := []string{"nosuid", "nodev"}
	if sc.NoExec {
		opts = append(opts, "noexec")
	}
	if dest == "/tmp" {
		// World-writable with the sticky bit, as every program expects /tmp.
		opts = append(opts, "mode=1777")
	}
	if sc.Size != "" {
		opts = append(opts, "size="+sc.Size)
	}
	if sc.CopyUp {
		opts = append(opts, "tmpcopyup")
	}
	return specs.Mount{Destination: dest, Type: "tmpfs", Source: "tmpfs", Options: opts}
}

// mountsAt reports whether a mount's destination is dest.
func mountsAt(mounts []specs.Mount, dest string) bool {
	for _, m := range mounts {
		if path.Clean(m.Destination) == dest {
			return true
		}
	}
	return false
}

// isAncestor reports whether a is a strict ancestor of b (both clean).
func isAncestor(a, b string) bool {
	if a == "/" {
		return b != "/"
	}
	return strings.HasPrefix(b, a+"/")
}

func checkRootfs(s *specs.Spec, prof *profiles.Profile) error {
	if prof.Rootfs.ReadOnly && !s.Root.Readonly {
		return refuse(RuleRootfs, "root.readonly", "is false: profile %s requires a read-only rootfs", prof.Name)
	}
	return nil
}
