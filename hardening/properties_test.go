package hardening

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hardened-dev/hardened/profiles"
)

// The engine's properties, checked over every test spec (and variants of
// them) under every built-in profile and host configuration, and by the
// fuzzers over whatever JSON decodes into a spec:
//   - it never panics;
//   - it refuses with ErrRefused, or returns an output that passes
//     Validate;
//   - monotonic: the output is never looser than the input;
//   - idempotent: hardening the output again changes nothing;
//   - the input is never mutated.

// configFrom maps a selector byte onto a configuration: profile, host
// AppArmor, AppArmor mode, runtime, --oci-seccomp.
func configFrom(t testing.TB, sel uint8) Config {
	return Config{
		Profile:         mustProfile(t, profileNames[int(sel)%len(profileNames)]),
		Host:            Host{AppArmor: sel&4 != 0},
		AppArmorMode:    []profiles.AppArmorMode{profiles.AppArmorIfAvailable, profiles.AppArmorRequired, profiles.AppArmorOff, ""}[(sel>>3)&3],
		Runtime:         []profiles.Runtime{profiles.RuntimeRunc, profiles.RuntimeGVisor}[(sel>>5)&1],
		RunscOCISeccomp: sel&64 != 0,
	}
}

// checkProperties hardens in under cfg and checks every property.
func checkProperties(t *testing.T, in *specs.Spec, cfg Config) {
	t.Helper()
	before, err := json.Marshal(in)
	if err != nil {
		t.Skip("not encodable")
	}
	out, rep, err := Harden(in, cfg)
	if after, _ := json.Marshal(in); string(after) != string(before) {
		t.Fatalf("input mutated")
	}
	if err != nil {
		if !errors.Is(err, ErrRefused) {
			t.Fatalf("error is not a refusal: %v", err)
		}
		// The engine's own output failing validation is a bug; only a
		// spec's own filter that runc cannot compile may fail there.
		var re *RefusalError
		errors.As(err, &re)
		if strings.HasPrefix(err.Error(), "failed to validate") && !(re.Rule == RuleSeccomp && strings.Contains(re.Reason, "runc would reject")) {
			t.Fatalf("engine output failed validation: %v", err)
		}
		return
	}
	if out == nil || rep == nil {
		t.Fatal("nil output without error")
	}
	if err := Validate(out, cfg); err != nil {
		t.Fatalf("output fails validation: %v", err)
	}
	checkMonotonic(t, in, out)
	checkDevicesMonotonic(t, in, out)
	checkHostAccess(t, out, cfg.Profile)
	again, rep2, err := Harden(out, cfg)
	if err != nil {
		t.Fatalf("hardening the output again fails: %v", err)
	}
	a, _ := json.Marshal(out)
	b, _ := json.Marshal(again)
	if string(a) != string(b) {
		t.Fatalf("not idempotent:\n%s\n%s", a, b)
	}
	if len(rep2.Changes) != 0 {
		t.Fatalf("second pass reports changes: %+v", rep2.Changes)
	}
}

// checkMonotonic checks that out is nowhere looser than in.
func checkMonotonic(t *testing.T, in, out *specs.Spec) {
	t.Helper()
	// Capabilities: every set a subset of the input's (none if nil).
	inCaps := in.Process.Capabilities
	if inCaps == nil {
		inCaps = &specs.LinuxCapabilities{}
	}
	if out.Process.Capabilities == nil {
		t.Fatal("output capabilities nil")
	}
	for _, set := range capSets {
		for _, c := range *set.get(out.Process.Capabilities) {
			if !slices.Contains(*set.get(inCaps), c) {
				t.Fatalf("%s gained %s", set.name, c)
			}
		}
	}
	if in.Process.NoNewPrivileges && !out.Process.NoNewPrivileges {
		t.Fatal("noNewPrivileges lost")
	}
	if in.Root.Readonly && !out.Root.Readonly {
		t.Fatal("read-only rootfs made writable")
	}
	if l := in.Linux; l != nil && l.Resources != nil && l.Resources.Pids != nil && l.Resources.Pids.Limit != nil && *l.Resources.Pids.Limit > 0 {
		o := out.Linux.Resources
		if o == nil || o.Pids == nil || o.Pids.Limit == nil || *o.Pids.Limit <= 0 || *o.Pids.Limit > *l.Resources.Pids.Limit {
			t.Fatal("pids limit raised")
		}
	}
	if in.Linux != nil {
		for _, p := range in.Linux.MaskedPaths {
			if !slices.Contains(out.Linux.MaskedPaths, p) {
				t.Fatalf("masked path %s removed", p)
			}
		}
		for _, p := range in.Linux.ReadonlyPaths {
			if !slices.Contains(out.Linux.ReadonlyPaths, p) {
				t.Fatalf("read-only path %s removed", p)
			}
		}
		if !slices.Equal(in.Linux.Namespaces, out.Linux.Namespaces) {
			t.Fatal("namespaces changed")
		}
		if why := seccompLoosened(in.Linux.Seccomp, out.Linux.Seccomp); why != "" {
			t.Fatalf("seccomp filter loosened: %s", why)
		}
		// Seccomp: a filter that denied by default still does, and lets
		// no syscall run that it did not.
		if sc := in.Linux.Seccomp; !weakFilter(sc) {
			osc := out.Linux.Seccomp
			if weakFilter(osc) || !denies(osc.DefaultAction) {
				t.Fatal("seccomp filter weakened")
			}
			inAllowed := allowedNames(sc)
			for n, uncond := range allowedNames(osc) {
				was, ok := inAllowed[n]
				if !ok || uncond && !was {
					t.Fatalf("seccomp lets %s run, which the input's filter did not", n)
				}
			}
		}
	}
	for _, m := range in.Mounts {
		if !slices.ContainsFunc(out.Mounts, func(o specs.Mount) bool {
			return o.Destination == m.Destination && o.Source == m.Source && o.Type == m.Type
		}) {
			t.Fatalf("mount %s removed", m.Destination)
		}
	}
	for k, v := range out.Annotations {
		if in.Annotations[k] != v {
			t.Fatalf("annotation %s added or changed", k)
		}
	}
	if p := in.Process.ApparmorProfile; p != "" && p != apparmorUnconfined && out.Process.ApparmorProfile != p {
		t.Fatalf("apparmor profile %q replaced", p)
	}
	for _, rl := range out.Process.Rlimits {
		for _, irl := range in.Process.Rlimits {
			if irl.Type == rl.Type && (rl.Hard > irl.Hard || rl.Soft > irl.Soft) {
				t.Fatalf("%s raised", rl.Type)
			}
		}
	}
}

// seccompLoosened returns how out, a hardened spec's filter, is looser than
// in, the filter it came with, or "" when it is not. Whatever in's default
// action: for every syscall name listed in either filter, and for a name
// listed in neither (which takes the default actions), what in blocked
// unconditionally out still blocks unconditionally (so it never allows
// it); on every architecture: a filter covers the native one and those it
// lists, and kills the syscalls of any other ABI, so out lists none that in
// did not. A filter without SECCOMP_FILTER_FLAG_SPEC_ALLOW does not gain
// it. A missing or disabled in blocks nothing.
func seccompLoosened(in, out *specs.LinuxSeccomp) string {
	if seccompDisabled(in) {
		return ""
	}
	if seccompDisabled(out) {
		return "filter removed"
	}
	native, _ := nativeArch()
	for _, a := range out.Architectures {
		if a != native && !slices.Contains(in.Architectures, a) {
			return fmt.Sprintf("architecture %s added to %v", a, in.Architectures)
		}
	}
	if !slices.Contains(in.Flags, specs.LinuxSeccompFlagSpecAllow) && slices.Contains(out.Flags, specs.LinuxSeccompFlagSpecAllow) {
		return "SECCOMP_FILTER_FLAG_SPEC_ALLOW added"
	}
	names := map[string]bool{"(listed nowhere)": true}
	for _, sc := range []*specs.LinuxSeccomp{in, out} {
		for _, r := range sc.Syscalls {
			for _, n := range r.Names {
				names[n] = true
			}
		}
	}
	for n := range names {
		if blockedUnconditionally(in, n) && !blockedUnconditionally(out, n) {
			return fmt.Sprintf("%s was blocked unconditionally and no longer is", n)
		}
	}
	return ""
}

// blockedUnconditionally reports whether sc blocks syscall n whatever its
// arguments: a rule that denies it without conditions, or a denying default
// action and no rule that lets it run (deferring to a tracer or listener
// counts as letting it run).
func blockedUnconditionally(sc *specs.LinuxSeccomp, n string) bool {
	if seccompDisabled(sc) {
		return false
	}
	listed := false
	for _, r := range sc.Syscalls {
		if !slices.Contains(r.Names, n) {
			continue
		}
		if denies(r.Action) && len(r.Args) == 0 {
			return true
		}
		listed = listed || !denies(r.Action)
	}
	return denies(sc.DefaultAction) && !listed
}

// checkHostAccess checks, independently of the rules' own code, what a
// hardened spec lets reach the host (the built-in profiles allow no device
// beyond containerd's defaults):
//   - no device rule allows every device, a whole class, or a block device,
//     and no linux.devices node is a block device;
//   - no mount's host source is one of the profile's denied paths, under
//     one or above one, unless it lies in the pod's own CRI/kubelet files;
//   - no proc, sysfs, cgroup, mqueue or devpts filesystem outside its place;
//     sysfs and cgroup mounts are read-only;
//   - no real-time scheduling or negative nice without CAP_SYS_NICE, no
//     real-time I/O class without CAP_SYS_ADMIN.
func checkHostAccess(t *testing.T, out *specs.Spec, prof *profiles.Profile) {
	t.Helper()
	if out.Linux.Resources != nil {
		for _, d := range out.Linux.Resources.Devices {
			if !d.Allow {
				continue
			}
			if d.Type == "" || d.Type == "a" {
				t.Fatalf("device rule allows every device: %+v", d)
			}
			if strings.ContainsAny(d.Access, "rw") && (d.Major == nil || *d.Major < 0 || d.Type == "b") {
				t.Fatalf("device rule allows a block device or a class: %s", ruleString(d))
			}
		}
	}
	for _, d := range []specs.LinuxDeviceCgroup{
		{Type: "b", Major: i64p(8), Minor: i64p(0), Access: "r"},   // /dev/sda
		{Type: "b", Major: i64p(254), Minor: i64p(0), Access: "w"}, // /dev/vda
		{Type: "c", Major: i64p(1), Minor: i64p(1), Access: "r"},   // /dev/mem
		{Type: "c", Major: i64p(1), Minor: i64p(11), Access: "r"},  // /dev/kmsg
	} {
		if emulateDevices(out.Linux.Resources.Devices).grants(d) {
			t.Fatalf("device rules grant %s", ruleString(d))
		}
	}
	for _, d := range out.Linux.Devices {
		if d.Type == "b" || d.Type == "c" && d.Major == 1 && (d.Minor == 1 || d.Minor == 2 || d.Minor == 4 || d.Minor == 11) {
			t.Fatalf("linux.devices has %s", d.Path)
		}
	}
	// Host paths: only the pod's own files (the properties run without the
	// node policy's consent), each a clean absolute path under an allowed
	// prefix with its placeholders filled in, mounted nosuid and nodev.
	allowed := func(src string) bool {
		for _, a := range prof.Mounts.AllowHostPathPrefixes {
			a = strings.ReplaceAll(a, profiles.HostPathPodUID, out.Annotations[annotationSandboxUID])
			a = strings.ReplaceAll(a, profiles.HostPathSandboxID, out.Annotations[annotationSandboxID])
			if strings.Contains(a, "//") || strings.Contains(a, "{") {
				continue // a placeholder without a value
			}
			if strings.HasSuffix(a, "/") && strings.HasPrefix(src, a) && src != a || !strings.HasSuffix(a, "/") && (src == a || strings.HasPrefix(src, a+"/")) {
				return true
			}
		}
		return false
	}
	if strings.HasPrefix(out.Root.Path, "/") && !allowed(path.Clean(out.Root.Path)) {
		t.Fatalf("root.path %s is not one of the pod's own files", out.Root.Path)
	}
	for _, m := range out.Mounts {
		if !isBind(m) && !strings.HasPrefix(m.Source, "/") {
			continue
		}
		if !allowed(path.Clean(m.Source)) {
			t.Fatalf("host path %s is not one of the pod's own files", m.Source)
		}
		if !lastOf(m.Options, "nosuid", "suid", false) || !lastOf(m.Options, "nodev", "dev", false) {
			t.Fatalf("host path %s mounted without nosuid,nodev: %v", m.Source, m.Options)
		}
	}
	for _, m := range out.Mounts {
		if isBind(m) {
			continue
		}
		if place, ok := map[string]string{"proc": "/proc", "sysfs": "/sys", "cgroup": "/sys/fs/cgroup", "cgroup2": "/sys/fs/cgroup", "mqueue": "/dev/mqueue", "devpts": "/dev/pts"}[m.Type]; ok && path.Clean(m.Destination) != place {
			t.Fatalf("%s mounted at %s", m.Type, m.Destination)
		}
		if (m.Type == "sysfs" || m.Type == "cgroup" || m.Type == "cgroup2") && (!slices.Contains(m.Options, "ro") || slices.Contains(m.Options, "rw")) {
			t.Fatalf("%s at %s is writable: %v", m.Type, m.Destination, m.Options)
		}
	}
	checkProcessPriority(t, out.Process)
}

// checkExecWithinInit: an exec'd process gets no SELinux label, group,
// lower OOM score, rlimit or scheduling beyond the container's init.
func checkExecWithinInit(t *testing.T, p, init *specs.Process) {
	t.Helper()
	if p.SelinuxLabel != init.SelinuxLabel {
		t.Fatalf("selinux label %q, the container's is %q", p.SelinuxLabel, init.SelinuxLabel)
	}
	for _, g := range append([]uint32{p.User.GID}, p.User.AdditionalGids...) {
		if g != init.User.GID && !slices.Contains(init.User.AdditionalGids, g) {
			t.Fatalf("group %d beyond the container's", g)
		}
	}
	if init.OOMScoreAdj != nil && (p.OOMScoreAdj == nil || *p.OOMScoreAdj < *init.OOMScoreAdj) {
		t.Fatalf("oom_score_adj %v below the container's %d", p.OOMScoreAdj, *init.OOMScoreAdj)
	}
	for _, rl := range p.Rlimits {
		i := slices.IndexFunc(init.Rlimits, func(x specs.POSIXRlimit) bool { return x.Type == rl.Type })
		if i < 0 || rl.Soft > init.Rlimits[i].Soft || rl.Hard > init.Rlimits[i].Hard {
			t.Fatalf("%s soft=%d hard=%d beyond the container's", rl.Type, rl.Soft, rl.Hard)
		}
	}
	checkProcessPriority(t, p)
}

// checkProcessPriority: no scheduling beyond the bounding set.
func checkProcessPriority(t *testing.T, p *specs.Process) {
	t.Helper()
	nice := p.Capabilities != nil && slices.Contains(p.Capabilities.Bounding, "CAP_SYS_NICE")
	admin := p.Capabilities != nil && slices.Contains(p.Capabilities.Bounding, "CAP_SYS_ADMIN")
	if sc := p.Scheduler; sc != nil && !nice && (sc.Nice < 0 || sc.Policy == specs.SchedFIFO || sc.Policy == specs.SchedRR || sc.Policy == specs.SchedDeadline) {
		t.Fatalf("scheduler %+v without CAP_SYS_NICE", sc)
	}
	if io := p.IOPriority; io != nil && io.Class == specs.IOPRIO_CLASS_RT && !admin {
		t.Fatal("real-time I/O class without CAP_SYS_ADMIN")
	}
}

// checkDevicesMonotonic: the output's device rules grant nothing the
// input's did not (runc's own appended rules count for both).
func checkDevicesMonotonic(t *testing.T, in, out *specs.Spec) {
	t.Helper()
	var inRules, outRules []specs.LinuxDeviceCgroup
	if in.Linux != nil && in.Linux.Resources != nil {
		inRules = in.Linux.Resources.Devices
	}
	if out.Linux.Resources != nil {
		outRules = out.Linux.Resources.Devices
	}
	gi, go_ := emulateDevices(inRules), emulateDevices(outRules)
	probes := slices.Clone(containerdDefaultDevices)
	for _, r := range inRules {
		if (r.Type == "c" || r.Type == "b") && r.Access != "" {
			probes = append(probes, specs.LinuxDeviceCgroup{Type: r.Type, Major: r.Major, Minor: r.Minor, Access: r.Access})
		}
	}
	for _, d := range probes {
		if go_.grants(d) && !gi.grants(d) {
			t.Fatalf("device rules grant %s, which the input's did not", ruleString(d))
		}
	}
	if in.Linux != nil {
		for _, d := range out.Linux.Devices {
			if !slices.ContainsFunc(in.Linux.Devices, func(i specs.LinuxDevice) bool {
				return i.Path == d.Path && i.Type == d.Type && i.Major == d.Major && i.Minor == d.Minor
			}) {
				t.Fatalf("device node %s added", d.Path)
			}
		}
	}
}

// variants derives specs from a test spec that exercise the rules.
func variants(s *specs.Spec) map[string]*specs.Spec {
	out := map[string]*specs.Spec{"as is": s}
	add := func(name string, f func(*specs.Spec)) {
		v := deepCopy(s)
		if v.Process == nil || v.Root == nil {
			return
		}
		if v.Linux == nil {
			v.Linux = &specs.Linux{}
		}
		f(v)
		out[name] = v
	}
	i64 := func(v int64) *int64 { return &v }
	add("nil caps", func(v *specs.Spec) { v.Process.Capabilities = nil })
	add("admin caps", func(v *specs.Spec) {
		c := []string{"CAP_SYS_ADMIN", "CAP_NET_BIND_SERVICE", "CAP_SYS_PTRACE", "CAP_BOGUS"}
		v.Process.Capabilities = &specs.LinuxCapabilities{Bounding: c, Effective: c, Permitted: c, Inheritable: c, Ambient: c}
	})
	add("low pids", func(v *specs.Spec) { v.Linux.Resources = &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: i64(7)}} })
	add("unlimited pids", func(v *specs.Spec) { v.Linux.Resources = &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: i64(-1)}} })
	add("read-only", func(v *specs.Spec) { v.Root.Readonly = true })
	add("nnp", func(v *specs.Spec) { v.Process.NoNewPrivileges = true })
	add("allow filter", func(v *specs.Spec) { v.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow} })
	add("tight filter", func(v *specs.Spec) {
		v.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActKillProcess, Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchAARCH64},
			Syscalls: []specs.LinuxSyscall{{Names: []string{"read", "write", "exit_group", "ptrace", "bpf"}, Action: specs.ActAllow}}}
	})
	// A Kubernetes Localhost profile "allow all but ...": its blocking
	// rules are not unconfined.
	add("localhost filter", func(v *specs.Spec) {
		v.Linux.Seccomp = localhostFilter()
	})
	add("errno filter beyond the base", func(v *specs.Spec) {
		v.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActErrno,
			Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchAARCH64},
			Flags:         []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagSpecAllow},
			Syscalls: []specs.LinuxSyscall{
				{Names: []string{"read", "write", "exit_group", "clone", "clone3", "kexec_load", "chroot"}, Action: specs.ActAllow},
				{Names: []string{"socket"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 0, Value: 2, Op: specs.OpEqualTo}}},
				{Names: []string{"socket"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 0, Value: 40, Op: specs.OpEqualTo}}},
			}}
	})
	add("annotations", func(v *specs.Spec) {
		v.Annotations = map[string]string{"dev.gvisor.flag.debug": "1", "io.kubernetes.cri.sandbox-id": "x", "run.oci.hooks.x": "y"}
	})
	add("apparmor specific", func(v *specs.Spec) { v.Process.ApparmorProfile = "my-profile" })
	add("core", func(v *specs.Spec) {
		v.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_CORE", Hard: 100, Soft: 10}, {Type: "RLIMIT_NOFILE", Hard: 10, Soft: 10}}
	})
	add("non-root", func(v *specs.Spec) { v.Process.User.UID = 1234 })
	// Privileged as containerd's CRI writes it: every device, host nodes,
	// writable sysfs and cgroup.
	add("privileged devices", func(v *specs.Spec) {
		if v.Linux.Resources == nil {
			v.Linux.Resources = &specs.LinuxResources{}
		}
		v.Linux.Resources.Devices = []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}, {Allow: true, Type: "c", Major: i64(195), Minor: i64(0), Access: "rw"}}
		v.Linux.Devices = []specs.LinuxDevice{
			{Path: "/dev/vda", Type: "b", Major: 254}, {Path: "/dev/kmsg", Type: "c", Major: 1, Minor: 11},
			{Path: "/dev/null", Type: "c", Major: 1, Minor: 3}, {Path: "/dev/net/tun", Type: "c", Major: 10, Minor: 200},
		}
		v.Mounts = append(v.Mounts,
			specs.Mount{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "rw"}},
			specs.Mount{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"ro", "rw"}})
	})
	add("device classes", func(v *specs.Spec) {
		v.Linux.Resources = &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Access: "rwm"},
			{Allow: true, Type: "b", Access: "rwm"}, {Allow: true, Type: "c", Major: i64(-1), Access: "rw"}, {Allow: true, Type: "c", Major: i64(1), Minor: i64(1), Access: "r"}}}
	})
	add("host paths", func(v *specs.Spec) {
		v.Mounts = append(v.Mounts, specs.Mount{Destination: "/hostproc", Type: "bind", Source: "/proc", Options: []string{"rbind"}})
	})
	add("pod's own volume", func(v *specs.Spec) {
		if v.Annotations == nil {
			v.Annotations = map[string]string{}
		}
		v.Annotations[annotationSandboxUID] = "u-1"
		v.Mounts = append(v.Mounts, specs.Mount{Destination: "/data", Type: "bind", Source: "/var/lib/kubelet/pods/u-1/volumes/x", Options: []string{"rbind"}})
	})
	add("second procfs", func(v *specs.Spec) {
		v.Mounts = append(v.Mounts, specs.Mount{Destination: "/p2", Type: "proc", Source: "proc"})
	})
	add("priority", func(v *specs.Spec) {
		v.Process.Scheduler = &specs.Scheduler{Policy: specs.SchedOther, Nice: -20}
		v.Process.IOPriority = &specs.LinuxIOPriority{Class: specs.IOPRIO_CLASS_RT}
	})
	return out
}

func TestProperties(t *testing.T) {
	for _, name := range testSpecNames(t) {
		for vname, s := range variants(loadSpec(t, name)) {
			for sel := range 128 {
				cfg := configFrom(t, uint8(sel))
				t.Run(name+"/"+vname+"/"+cfg.Profile.Name, func(t *testing.T) {
					checkProperties(t, s, cfg)
				})
			}
		}
	}
}

// seedSpecs returns testdata/specs/*.json as fuzz seeds.
func seedSpecs(f *testing.F) [][]byte {
	files, err := filepath.Glob(filepath.Join("testdata", "specs", "*.json"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no seeds: %v", err)
	}
	var out [][]byte
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

func FuzzHarden(f *testing.F) {
	for i, seed := range seedSpecs(f) {
		for _, sel := range []uint8{0, 1, 2, 4 + 1, 8 + 2, 16 + 4, 32 + 4 + 2, 64 + 32 + 1} {
			f.Add(seed, sel+uint8(i))
		}
	}
	f.Add([]byte(`{}`), uint8(0))
	f.Add([]byte(`{"process":{},"root":{}}`), uint8(1))
	f.Add([]byte(`{"process":{"cwd":"/"},"root":{},"linux":{"seccomp":{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["ptrace"],"action":"SCMP_ACT_NOTIFY","args":[{"index":7}]}]}}}`), uint8(1))
	// A Kubernetes Localhost profile: default allow, some syscalls denied.
	f.Add([]byte(`{"process":{"cwd":"/","user":{"uid":1000}},"root":{},"linux":{"seccomp":{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_AARCH64"],"flags":["SECCOMP_FILTER_FLAG_SPEC_ALLOW"],"syscalls":[{"names":["chmod","fchmod"],"action":"SCMP_ACT_ERRNO"},{"names":["flock"],"action":"SCMP_ACT_KILL"},{"names":["fchmodat"],"action":"SCMP_ACT_ERRNO","errnoRet":13,"args":[{"index":2,"value":2048,"valueTwo":2048,"op":"SCMP_CMP_MASKED_EQ"}]},{"names":["mknod","reboot"],"action":"SCMP_ACT_TRACE"}]}}}`), uint8(0))
	f.Add([]byte(`{"process":{"cwd":"/","user":{"uid":1000}},"root":{},"linux":{"seccomp":{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read","clone","clone3","kexec_load"],"action":"SCMP_ACT_ALLOW"},{"names":["socket"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":2,"op":"SCMP_CMP_EQ"}]}]}}}`), uint8(1))
	f.Fuzz(func(t *testing.T, data []byte, sel uint8) {
		var s specs.Spec
		if err := json.Unmarshal(data, &s); err != nil {
			return
		}
		checkProperties(t, &s, configFrom(t, sel))
	})
}

func FuzzHardenExec(f *testing.F) {
	for _, seed := range seedSpecs(f) {
		var s specs.Spec
		if json.Unmarshal(seed, &s) == nil && s.Process != nil {
			b, _ := json.Marshal(s.Process)
			f.Add(b, uint8(1))
			f.Add(b, uint8(5))
		}
	}
	f.Add([]byte(`{"cwd":"/proc/self/fd/3","env":["LD_PRELOAD=/dev/fd/4"]}`), uint8(0))
	f.Add([]byte(`{"cwd":"/","user":{"uid":101,"gid":0,"additionalGids":[0]},"selinuxLabel":"system_u:system_r:spc_t:s0","oomScoreAdj":-1000,"scheduler":{"policy":"SCHED_OTHER","nice":-20},"ioPriority":{"class":"IOPRIO_CLASS_RT"},"rlimits":[{"type":"RLIMIT_RTPRIO","hard":99,"soft":99}]}`), uint8(1))
	f.Fuzz(func(t *testing.T, data []byte, sel uint8) {
		var p specs.Process
		if err := json.Unmarshal(data, &p); err != nil {
			return
		}
		cfg := configFrom(t, sel)
		container, _, err := Harden(loadSpec(t, "cri-container"), cfg)
		if err != nil {
			return
		}
		before, _ := json.Marshal(&p)
		out, _, err := HardenExec(&p, container, cfg)
		if after, _ := json.Marshal(&p); string(after) != string(before) {
			t.Fatal("input mutated")
		}
		if err != nil {
			if !errors.Is(err, ErrRefused) || strings.HasPrefix(err.Error(), "failed to validate") {
				t.Fatalf("unexpected error: %v", err)
			}
			return
		}
		for _, set := range capSets {
			for _, c := range *set.get(out.Capabilities) {
				if !slices.Contains(*set.get(container.Process.Capabilities), c) {
					t.Fatalf("%s: %s beyond the container's", set.name, c)
				}
			}
		}
		if !out.NoNewPrivileges || out.ApparmorProfile != container.Process.ApparmorProfile {
			t.Fatal("nnp or apparmor not the container's")
		}
		checkExecWithinInit(t, out, container.Process)
		again, rep, err := HardenExec(out, container, cfg)
		if err != nil || len(rep.Changes) != 0 {
			t.Fatalf("not idempotent: %v %+v", err, rep)
		}
		a, _ := json.Marshal(out)
		b, _ := json.Marshal(again)
		if string(a) != string(b) {
			t.Fatal("not idempotent")
		}
	})
}

// FuzzHardenFields mutates the fields the rules look at, on top of the test
// specs, where random JSON rarely reaches.
func FuzzHardenFields(f *testing.F) {
	var seeds []*specs.Spec
	for _, b := range seedSpecs(f) {
		var s specs.Spec
		if json.Unmarshal(b, &s) == nil && s.Process != nil && s.Root != nil {
			seeds = append(seeds, &s)
		}
	}
	f.Add(uint8(0), uint8(1), "/", "/bin/sh", "/usr/lib", "/data", "/srv/data", uint64(0xffff), int64(100), false, uint8(1), "read,ptrace,chown32", uint8(0), uint8(0xff), "dev.gvisor.flag.debug")
	f.Add(uint8(1), uint8(2), "/proc/self/fd/7", "self/fd/3/x", "/proc/1/root", "rel", "/proc/self/cwd", uint64(1)<<21, int64(-1), true, uint8(2), "mount,bpf", uint8(7), uint8(0x0f), "bundle")
	f.Add(uint8(2), uint8(0), "/app", "./run", "a b:c;d", "/tmp", "tmpfs", ^uint64(0), int64(0), true, uint8(5), ",write,,", uint8(3), uint8(0x20), "hardened.dev/profile")
	f.Add(uint8(0), uint8(0), "/", "/bin/sh", "/usr/lib", "/data", "/srv/data", uint64(0xffff), int64(100), false, uint8(1), "chmod,mknod,clone3,socket,flock", uint8(0x80+0x20+0x10+1), uint8(0x0f), "a")
	actions := []specs.LinuxSeccompAction{specs.ActAllow, specs.ActErrno, specs.ActKill, specs.ActLog, specs.ActTrap, specs.ActNotify, specs.ActTrace, specs.ActKillProcess, "SCMP_ACT_BOGUS"}
	capNames := append(slices.Clone(allCaps), "CAP_BPF", "CAP_PERFMON", "CAP_BOGUS")
	nsTypes := []specs.LinuxNamespaceType{specs.PIDNamespace, specs.IPCNamespace, specs.NetworkNamespace, specs.UTSNamespace, specs.MountNamespace}
	f.Fuzz(func(t *testing.T, base, sel uint8, cwd, arg0, envVal, mountDest, mountSrc string, caps uint64, pids int64,
		ro bool, defAct uint8, names string, argIdx, nsMask uint8, annKey string) {
		s := deepCopy(seeds[int(base)%len(seeds)])
		s.Process.Cwd = cwd
		s.Process.Args = append([]string{arg0}, s.Process.Args...)
		s.Process.Env = append(s.Process.Env, "LD_LIBRARY_PATH="+envVal, "PATH="+envVal)
		s.Mounts = append(s.Mounts, specs.Mount{Destination: mountDest, Source: mountSrc, Type: []string{"bind", "tmpfs", "proc", "sysfs", "cgroup", "ext4"}[int(sel)%6],
			Options: [][]string{nil, {"rw"}, {"ro", "rw"}, {"rbind"}}[int(argIdx)%4]})
		var set []string
		for i, c := range capNames {
			if caps&(1<<uint(i%64)) != 0 {
				set = append(set, c)
			}
		}
		s.Process.Capabilities = &specs.LinuxCapabilities{Bounding: set, Effective: set[len(set)/2:], Ambient: set[:len(set)/3]}
		if s.Linux == nil {
			s.Linux = &specs.Linux{}
		}
		s.Linux.Resources = &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: &pids}}
		// Device rules and nodes from the capability bits' high end.
		devTypes := []string{"", "a", "b", "c", "x"}
		for i := range int(caps>>60) % 4 {
			var major, minor *int64
			if caps&(1<<(40+i)) != 0 {
				major = i64p(int64(caps>>(44+i*2)) % 12)
			}
			if caps&(1<<(50+i)) != 0 {
				minor = i64p(int64(caps>>(52+i*2)) % 12)
			}
			s.Linux.Resources.Devices = append(s.Linux.Resources.Devices, specs.LinuxDeviceCgroup{
				Allow: caps&(1<<(56+i)) != 0, Type: devTypes[int(caps>>(30+i*3))%len(devTypes)], Major: major, Minor: minor,
				Access: []string{"rwm", "r", "m", ""}[int(argIdx>>4)%4]})
		}
		if nsMask&0x40 != 0 {
			s.Linux.Devices = append(s.Linux.Devices, specs.LinuxDevice{Path: "/dev/x", Type: devTypes[int(argIdx)%len(devTypes)], Major: int64(argIdx % 12), Minor: int64(nsMask % 12)})
		}
		s.Root.Readonly = ro
		if defAct%10 == 0 {
			s.Linux.Seccomp = nil
		} else {
			sc := &specs.LinuxSeccomp{DefaultAction: actions[int(defAct)%len(actions)]}
			if argIdx&0x10 != 0 {
				sc.Flags = []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagSpecAllow, specs.LinuxSeccompFlagLog}
			}
			switch (argIdx >> 5) & 3 {
			case 1:
				sc.Architectures = []specs.Arch{specs.ArchX86_64, specs.ArchAARCH64}
			case 2:
				sc.Architectures = []specs.Arch{specs.ArchARM}
			case 3:
				sc.Architectures = []specs.Arch{specs.ArchX86, specs.ArchX86_64}
			}
			if argIdx&0x80 != 0 {
				sc.ListenerPath = "/run/agent.sock"
			}
			for i, n := range strings.Split(names, ",") {
				r := specs.LinuxSyscall{Names: []string{n}, Action: actions[(i+int(argIdx))%len(actions)]}
				if i%2 == 1 {
					r.Args = []specs.LinuxSeccompArg{{Index: uint(argIdx % 8), Value: uint64(i), Op: specs.OpEqualTo}}
				}
				sc.Syscalls = append(sc.Syscalls, r)
			}
			s.Linux.Seccomp = sc
		}
		s.Linux.Namespaces = nil
		for i, typ := range nsTypes {
			if nsMask&(1<<uint(i)) != 0 {
				ns := specs.LinuxNamespace{Type: typ}
				if nsMask&0x80 != 0 {
					ns.Path = []string{"/proc/1/ns/x", "/proc/42/ns/x", "/var/run/netns/a", "/proc/self/ns/x"}[i%4]
				}
				s.Linux.Namespaces = append(s.Linux.Namespaces, ns)
			}
		}
		if s.Annotations == nil {
			s.Annotations = map[string]string{}
		}
		s.Annotations[annKey] = "v"
		// The allowlisted classes, from the same inputs.
		if sel&0x40 != 0 {
			s.Linux.Sysctl = map[string]string{annKey: envVal}
		}
		if sel&0x80 != 0 {
			s.Linux.CgroupsPath = mountSrc
		}
		if argIdx&0x08 != 0 {
			s.Mounts[len(s.Mounts)-1].Options = strings.Split(names, ",")
		}
		if ro {
			v := int(pids % 2001)
			s.Process.OOMScoreAdj = &v
		}
		s.Linux.RootfsPropagation = []string{"", "shared", "rslave", "bogus"}[int(defAct)%4]
		if nsMask&0x20 != 0 {
			s.Process.SelinuxLabel = envVal
		}
		checkProperties(t, s, configFrom(t, sel))
	})
}

func FuzzHardenUpdate(f *testing.F) {
	f.Add([]byte(`{"pids":{"limit":-1},"unified":{"pids.max":"max"}}`), uint8(1))
	f.Add([]byte(`{"memory":{"limit":1073741824},"cpu":{"shares":512}}`), uint8(2))
	f.Add([]byte(`{"devices":[{"allow":true,"access":"rwm"}],"pids":{"limit":5}}`), uint8(0))
	f.Fuzz(func(t *testing.T, data []byte, sel uint8) {
		var r specs.LinuxResources
		if err := json.Unmarshal(data, &r); err != nil {
			return
		}
		cfg := configFrom(t, sel)
		before, _ := json.Marshal(&r)
		out, _, err := HardenUpdate(&r, Running{}, cfg)
		if after, _ := json.Marshal(&r); string(after) != string(before) {
			t.Fatal("input mutated")
		}
		if err != nil {
			if !errors.Is(err, ErrRefused) || strings.HasPrefix(err.Error(), "failed to validate") {
				t.Fatalf("unexpected error: %v", err)
			}
			return
		}
		if err := checkPidsResources(out, cfg.Profile, ""); err != nil && cfg.Profile.Pids.Limit > 0 {
			t.Fatal(err)
		}
		if r.Pids != nil && r.Pids.Limit != nil && *r.Pids.Limit > 0 && *out.Pids.Limit > *r.Pids.Limit {
			t.Fatal("pids limit raised")
		}
		again, rep, err := HardenUpdate(out, Running{}, cfg)
		if err != nil || len(rep.Changes) != 0 || mustJSON(t, again) != mustJSON(t, out) {
			t.Fatalf("not idempotent: %v %+v", err, rep)
		}
	})
}
