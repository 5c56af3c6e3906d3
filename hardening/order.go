package hardening

import (
	"errors"
	"fmt"
	"slices"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hardened-dev/hardened/profiles"
)

// Profiles are ordered by rank, and a rank is a promise: the resolver lets
// a route, an image label or the node's minimum stand for "this strict or
// stricter" by rank alone. A profile that ranks at or above another must
// therefore be at least as strict on every dimension, which is checked the
// way the engine sees profiles: reference specs (referenceSpecs, one per
// dimension: capabilities, root, privileged, host namespaces, devices, host
// paths, sysctls, SELinux, rlimits, OOM score, scratch mounts, seccomp,
// pids, a writable rootfs) are hardened under both. What the lower profile
// refuses, the higher one refuses too; where both accept, the higher one's
// output is nowhere looser than the lower one's (stricter returns how it
// is). An exec into the container is compared the same way, and the
// preferred runtime (gVisor is the stricter one).

// CheckProfileOrder checks every pair of profiles of set in which at least
// one is not built in (the built-ins are checked by the package's tests): a
// profile ranking at or above another that is looser on some dimension is
// an error naming both, the dimension and the reference spec, with the
// offending operator profile's file.
func CheckProfileOrder(set *profiles.Set) error {
	names := set.Names()
	if !slices.ContainsFunc(names, func(n string) bool { return !set.IsBuiltin(n) }) {
		return nil
	}
	outs := make(map[string][]refOutcome, len(names))
	for _, n := range names {
		p, err := set.Get(n)
		if err != nil {
			return err
		}
		outs[n] = hardenReferences(p)
	}
	var errs []error
	for _, hi := range names {
		for _, lo := range names {
			if hi == lo || set.IsBuiltin(hi) && set.IsBuiltin(lo) {
				continue
			}
			if c, _ := set.Compare(hi, lo); c < 0 {
				continue
			}
			if why := looserProfile(outs[hi], outs[lo]); why != "" {
				hp, _ := set.Get(hi)
				lp, _ := set.Get(lo)
				file := set.Source(hi)
				if set.IsBuiltin(hi) {
					file = set.Source(lo)
				}
				errs = append(errs, &profiles.Error{File: file, Msg: fmt.Sprintf(
					"profile %q (rank %d) ranks at or above %q (rank %d) but is looser: %s (a profile ranked at or above another must be at least as strict on every dimension)",
					hi, hp.Rank, lo, lp.Rank, why)})
			}
		}
	}
	return errors.Join(errs...)
}

// refOutcome is what the engine makes of one reference spec under one
// profile: the hardened spec, or a refusal.
type refOutcome struct {
	name    string
	out     *specs.Spec
	refused bool
	exec    *specs.Process // an exec into the base spec's container; nil if refused
	runtime profiles.Runtime
}

// referenceConfig is the configuration the references are hardened with:
// a host with AppArmor (so that the profile's AppArmor counts), runc.
func referenceConfig(p *profiles.Profile) Config {
	return Config{Profile: p, Host: Host{AppArmor: true}, AppArmorMode: profiles.AppArmorIfAvailable, Runtime: profiles.RuntimeRunc, ContainerID: refContainerID}
}

func hardenReferences(p *profiles.Profile) []refOutcome {
	cfg := referenceConfig(p)
	refs := referenceSpecs()
	outs := make([]refOutcome, 0, len(refs))
	for _, ref := range refs {
		o := refOutcome{name: ref.name, runtime: p.Runtime}
		out, _, err := Harden(ref.spec, cfg)
		o.out, o.refused = out, err != nil
		if err == nil && ref.name == "container" {
			if e, _, err := HardenExec(deepCopy(ref.spec.Process), out, cfg); err == nil {
				o.exec = e
			}
		}
		outs = append(outs, o)
	}
	return outs
}

// looserProfile returns how the outcomes hi are looser than lo, or "".
func looserProfile(hi, lo []refOutcome) string {
	for i := range lo {
		h, l := hi[i], lo[i]
		switch {
		case l.refused && !h.refused:
			return fmt.Sprintf("it accepts reference spec %q, which the other refuses", l.name)
		case h.refused:
			continue
		}
		if why := stricter(h.out, l.out); why != "" {
			return fmt.Sprintf("reference spec %q: %s", l.name, why)
		}
		if l.name == "container" && h.exec != nil && l.exec == nil {
			return "it allows exec into the container, which the other denies"
		}
		if l.runtime == profiles.RuntimeGVisor && h.runtime != profiles.RuntimeGVisor {
			return "the other prefers gVisor, the stricter runtime"
		}
	}
	return ""
}

// stricter returns how a hardened spec a is looser than b, or "" when a is
// at least as strict as b on every dimension the engine sets.
func stricter(a, b *specs.Spec) string {
	for _, check := range []func(a, b *specs.Spec) string{
		looserCapabilities, looserProcess, looserRootfs, looserLinux, looserMounts, looserSeccomp,
	} {
		if why := check(a, b); why != "" {
			return why
		}
	}
	return ""
}

func looserCapabilities(a, b *specs.Spec) string {
	for _, set := range capSets {
		for _, c := range *set.get(a.Process.Capabilities) {
			if !slices.Contains(*set.get(b.Process.Capabilities), c) {
				return fmt.Sprintf("its %s capabilities hold %s", set.name, c)
			}
		}
	}
	return ""
}

func looserProcess(a, b *specs.Spec) string {
	pa, pb := a.Process, b.Process
	switch {
	case pb.NoNewPrivileges && !pa.NoNewPrivileges:
		return "no_new_privileges is off"
	case pb.ApparmorProfile != "" && pa.ApparmorProfile == "":
		return "no AppArmor profile"
	case pa.OOMScoreAdj != nil && pb.OOMScoreAdj != nil && *pa.OOMScoreAdj < *pb.OOMScoreAdj:
		return fmt.Sprintf("oomScoreAdj %d is lower", *pa.OOMScoreAdj)
	}
	for _, rb := range pb.Rlimits {
		i := slices.IndexFunc(pa.Rlimits, func(r specs.POSIXRlimit) bool { return r.Type == rb.Type })
		if i < 0 || pa.Rlimits[i].Hard > rb.Hard || pa.Rlimits[i].Soft > rb.Soft {
			return fmt.Sprintf("%s is higher", rb.Type)
		}
	}
	return ""
}

func looserRootfs(a, b *specs.Spec) string {
	if b.Root.Readonly && !a.Root.Readonly {
		return "the rootfs is writable"
	}
	return ""
}

func looserLinux(a, b *specs.Spec) string {
	la, lb := a.Linux, b.Linux
	if lim := pidsLimitOf(lb); lim > 0 && (pidsLimitOf(la) <= 0 || pidsLimitOf(la) > lim) {
		return fmt.Sprintf("the pids limit is above %d", lim)
	}
	for _, list := range []struct {
		name   string
		aa, bb []string
	}{{"masked", la.MaskedPaths, lb.MaskedPaths}, {"read-only", la.ReadonlyPaths, lb.ReadonlyPaths}} {
		for _, p := range list.bb {
			if !slices.Contains(list.aa, p) {
				return fmt.Sprintf("%s path %s is not", list.name, p)
			}
		}
	}
	var ra, rb []specs.LinuxDeviceCgroup
	if la.Resources != nil {
		ra = la.Resources.Devices
	}
	if lb.Resources != nil {
		rb = lb.Resources.Devices
	}
	ga, gb := emulateDevices(ra), emulateDevices(rb)
	for _, d := range probeDevices {
		if ga.grants(d) && !gb.grants(d) {
			return "device " + ruleString(d) + " is granted"
		}
	}
	return ""
}

func pidsLimitOf(l *specs.Linux) int64 {
	if l == nil || l.Resources == nil || l.Resources.Pids == nil || l.Resources.Pids.Limit == nil {
		return 0
	}
	return *l.Resources.Pids.Limit
}

// looserMounts compares the protections of the mounts both specs have at
// the same destination: read-only, nosuid, nodev, noexec.
func looserMounts(a, b *specs.Spec) string {
	for _, mb := range b.Mounts {
		i := slices.IndexFunc(a.Mounts, func(m specs.Mount) bool { return m.Destination == mb.Destination })
		if i < 0 {
			return fmt.Sprintf("no mount at %s", mb.Destination)
		}
		ma := a.Mounts[i]
		for _, f := range [][2]string{{"ro", "rw"}, {"nosuid", "suid"}, {"nodev", "dev"}, {"noexec", "exec"}} {
			if lastOf(mb.Options, f[0], f[1], false) && !lastOf(ma.Options, f[0], f[1], false) {
				return fmt.Sprintf("the mount at %s is not %s", mb.Destination, f[0])
			}
		}
	}
	return ""
}

// looserSeccomp: a's filter lets no syscall run that b's blocks.
func looserSeccomp(a, b *specs.Spec) string {
	sa, sb := a.Linux.Seccomp, b.Linux.Seccomp
	if seccompDisabled(sb) {
		return ""
	}
	if seccompDisabled(sa) {
		return "it has no seccomp filter"
	}
	names := map[string]bool{}
	for _, sc := range []*specs.LinuxSeccomp{sa, sb} {
		for _, r := range sc.Syscalls {
			for _, n := range r.Names {
				names[n] = true
			}
		}
	}
	for _, n := range slices.Sorted(func(yield func(string) bool) {
		for n := range names {
			if !yield(n) {
				return
			}
		}
	}) {
		if runsUnder(sa, n) && !runsUnder(sb, n) {
			return "seccomp lets " + n + " run"
		}
	}
	native, _ := nativeArch()
	for _, arch := range sa.Architectures {
		// A filter always covers the native architecture, listed or not.
		if arch != native && !slices.Contains(sb.Architectures, arch) {
			return "seccomp allows architecture " + string(arch)
		}
	}
	return ""
}

// runsUnder reports whether filter sc lets syscall n run for some
// arguments.
func runsUnder(sc *specs.LinuxSeccomp, n string) bool {
	listed := false
	for _, r := range sc.Syscalls {
		if !slices.Contains(r.Names, n) {
			continue
		}
		listed = true
		if !denies(r.Action) {
			return true
		}
		if len(r.Args) == 0 {
			return false
		}
	}
	return !listed && !denies(sc.DefaultAction)
}

// probeDevices are devices whose grant the ordering compares: GPUs, a
// disk, /dev/mem, /dev/kmsg, a FUSE and a KVM device.
var probeDevices = []specs.LinuxDeviceCgroup{
	devRule("c", 195, minorOf(0), "rw"), devRule("b", 8, minorOf(0), "rw"),
	devRule("c", 1, minorOf(1), "rw"), devRule("c", 1, minorOf(11), "rw"),
	devRule("c", 10, minorOf(229), "rw"), devRule("c", 10, minorOf(232), "rw"),
}

const refContainerID = "0123456789abcdef"

type referenceSpec struct {
	name string
	spec *specs.Spec
}

// referenceSpecs are the specs profiles are compared by: a CRI container
// and one variant per dimension.
// (Long on purpose: a table, one entry per dimension.)
func referenceSpecs() []referenceSpec {
	base := func() *specs.Spec {
		uid, sb := "00000000-0000-0000-0000-000000000001", "fedcba9876543210"
		caps := []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
			"CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT",
			"CAP_KILL", "CAP_AUDIT_WRITE"}
		return &specs.Spec{
			Version: specs.Version,
			Process: &specs.Process{
				User: specs.User{UID: 1000, GID: 1000}, Args: []string{"/app"}, Cwd: "/",
				Capabilities: &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps},
			},
			Root: &specs.Root{Path: "rootfs"},
			Mounts: []specs.Mount{
				{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
				{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
				{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
				{Destination: "/etc/hosts", Type: "bind", Source: "/var/lib/kubelet/pods/" + uid + "/etc-hosts", Options: []string{"rbind", "rprivate", "rw"}},
			},
			Annotations: map[string]string{annotationSandboxUID: uid, annotationSandboxID: sb},
			Linux: &specs.Linux{
				Namespaces: []specs.LinuxNamespace{
					{Type: specs.PIDNamespace}, {Type: specs.IPCNamespace}, {Type: specs.UTSNamespace},
					{Type: specs.MountNamespace}, {Type: specs.NetworkNamespace},
				},
				CgroupsPath: "/kubepods/pod" + uid + "/" + refContainerID,
			},
		}
	}
	variant := func(name string, f func(s *specs.Spec)) referenceSpec {
		s := base()
		f(s)
		return referenceSpec{name, s}
	}
	all := slices.Clone(allCaps)
	return []referenceSpec{
		{"container", base()},
		variant("root user", func(s *specs.Spec) { s.Process.User = specs.User{} }),
		variant("more capabilities", func(s *specs.Spec) {
			c := s.Process.Capabilities
			for _, set := range []*[]string{&c.Bounding, &c.Effective, &c.Permitted} {
				*set = append(*set, "CAP_SYS_ADMIN", "CAP_NET_ADMIN", "CAP_SYS_PTRACE", "CAP_SYS_NICE", "CAP_IPC_LOCK")
			}
		}),
		variant("privileged", func(s *specs.Spec) {
			s.Process.Capabilities = &specs.LinuxCapabilities{Bounding: all, Effective: all, Permitted: all}
			s.Linux.Resources = &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}}
		}),
		variant("host network", func(s *specs.Spec) {
			s.Linux.Namespaces = slices.DeleteFunc(s.Linux.Namespaces, func(n specs.LinuxNamespace) bool { return n.Type == specs.NetworkNamespace })
		}),
		variant("gpu", func(s *specs.Spec) {
			s.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/nvidia0", Type: "c", Major: 195, Minor: 0}}
			s.Linux.Resources = &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{devRule("c", 195, nil, "rw")}}
		}),
		variant("host path", func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/data", Type: "bind", Source: "/srv/data", Options: []string{"rbind", "rw"}})
		}),
		variant("sysctls", func(s *specs.Spec) {
			s.Linux.Sysctl = map[string]string{"kernel.msgmax": "65536", "net.core.somaxconn": "1024"}
		}),
		variant("selinux", func(s *specs.Spec) { s.Process.SelinuxLabel = "system_u:system_r:container_engine_t:s0" }),
		variant("rlimits", func(s *specs.Spec) {
			s.Process.Rlimits = []specs.POSIXRlimit{
				{Type: "RLIMIT_NOFILE", Soft: 1 << 30, Hard: 1 << 30}, {Type: "RLIMIT_MEMLOCK", Soft: ^uint64(0), Hard: ^uint64(0)},
				{Type: "RLIMIT_CORE", Soft: ^uint64(0), Hard: ^uint64(0)}, {Type: "RLIMIT_MSGQUEUE", Soft: 1 << 30, Hard: 1 << 30},
			}
		}),
		variant("oom score", func(s *specs.Spec) { v := -999; s.Process.OOMScoreAdj = &v }),
		variant("scratch volumes", func(s *specs.Spec) {
			for _, d := range []string{"/tmp", "/run"} {
				s.Mounts = append(s.Mounts, specs.Mount{Destination: d, Type: "tmpfs", Source: "tmpfs", Options: []string{"rw", "exec"}})
			}
		}),
		variant("unlimited pids", func(s *specs.Spec) {
			l := int64(-1)
			s.Linux.Resources = &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: &l}}
		}),
		variant("permissive seccomp", func(s *specs.Spec) {
			s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow}
		}),
		variant("read-only rootfs asked", func(s *specs.Spec) { s.Root.Readonly = true }),
		variant("apparmor unconfined", func(s *specs.Spec) { s.Process.ApparmorProfile = "unconfined" }),
		variant("shared propagation", func(s *specs.Spec) { s.Linux.RootfsPropagation = "rshared" }),
	}
}

// LoadProfiles loads the built-in profiles plus the operator's from dir
// (profiles.Load) and checks their order (CheckProfileOrder): a profile
// set the resolver can trust by rank, or an error.
func LoadProfiles(dir string) (*profiles.Set, error) {
	set, err := profiles.Load(dir)
	if err != nil {
		return nil, err
	}
	if err := CheckProfileOrder(set); err != nil {
		return nil, err
	}
	return set, nil
}
