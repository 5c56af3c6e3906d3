package hardening

import (
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestCompileLikeRunc pins what runc v1.5.2 accepts and refuses when it
// compiles a filter (libcontainer/specconv.SetupSeccomp, then
// libcontainer/seccomp.InitSeccomp), so that Validate refuses exactly what
// runc would fail on.
func TestCompileLikeRunc(t *testing.T) {
	allow := func(names ...string) specs.LinuxSyscall {
		return specs.LinuxSyscall{Names: names, Action: specs.ActAllow}
	}
	filter := func(def specs.LinuxSeccompAction, rules ...specs.LinuxSyscall) *specs.LinuxSeccomp {
		return &specs.LinuxSeccomp{DefaultAction: def, Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchAARCH64}, Syscalls: rules}
	}
	tests := []struct {
		name string
		sc   *specs.LinuxSeccomp
		want string // "" : runc accepts it
	}{
		{"disabled", &specs.LinuxSeccomp{}, ""},
		{"plain", filter(specs.ActErrno, allow("read", "write")), ""},
		// runc ignores names libseccomp cannot resolve (matchCall logs
		// "unknown seccomp syscall ... ignored"), and libseccomp resolves
		// names of other architectures to pseudo-syscalls.
		{"unknown name ignored", filter(specs.ActErrno, allow("read", "not_a_syscall_at_all")), ""},
		{"other-arch name", &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Architectures: []specs.Arch{specs.ArchX86_64}, Syscalls: []specs.LinuxSyscall{allow("chown32", "arm_fadvise64_64", "s390_runtime_instr")}}, ""},
		{"rule with the default action skipped", filter(specs.ActErrno, specs.LinuxSyscall{Names: []string{"read"}, Action: specs.ActErrno}), ""},
		{"known flags", &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Flags: []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagLog, specs.LinuxSeccompFlagSpecAllow, "SECCOMP_FILTER_FLAG_TSYNC"}}, ""},
		{"repeated argument index (OR)", filter(specs.ActErrno, specs.LinuxSyscall{Names: []string{"socket"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{
			{Index: 0, Value: 1, Op: specs.OpEqualTo}, {Index: 0, Value: 2, Op: specs.OpEqualTo}}}), ""},
		{"notify with listener", &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, ListenerPath: "/run/agent.sock", Syscalls: []specs.LinuxSyscall{{Names: []string{"mknod"}, Action: specs.ActNotify}}}, ""},

		{"no default action with rules", &specs.LinuxSeccomp{Syscalls: []specs.LinuxSyscall{allow("read")}}, "not a valid action"},
		{"unknown default action", filter("SCMP_ACT_PERHAPS"), "not a valid action"},
		{"unknown rule action", filter(specs.ActErrno, specs.LinuxSyscall{Names: []string{"read"}, Action: "SCMP_ACT_PERHAPS"}), "not a valid action"},
		{"unknown operator", filter(specs.ActErrno, specs.LinuxSyscall{Names: []string{"read"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 0, Op: "SCMP_CMP_ROUGHLY"}}}), "not a valid operator"},
		{"unknown architecture", &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Architectures: []specs.Arch{"SCMP_ARCH_Z80"}}, "not a valid arch"},
		{"unknown flag", &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Flags: []specs.LinuxSeccompFlag{"SECCOMP_FILTER_FLAG_MAGIC"}}, "not known to runc"},
		{"argument index 6", filter(specs.ActErrno, specs.LinuxSyscall{Names: []string{"read"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 6, Op: specs.OpEqualTo}}}), "up to 6 arguments"},
		{"empty name", filter(specs.ActErrno, allow("")), "empty string"},
		{"notify default", &specs.LinuxSeccomp{DefaultAction: specs.ActNotify, ListenerPath: "/run/agent.sock"}, "default action"},
		{"notify on write", &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, ListenerPath: "/run/agent.sock", Syscalls: []specs.LinuxSyscall{{Names: []string{"write"}, Action: specs.ActNotify}}}, "write"},
		{"notify without listener", &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{{Names: []string{"mknod"}, Action: specs.ActNotify}}}, "listenerPath"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for pass := range 2 { // uncached, then cached
				err := compileLikeRunc(tt.sc)
				if tt.want == "" {
					if err != nil {
						t.Fatalf("pass %d: runc accepts this filter, got %v", pass, err)
					}
					continue
				}
				re := refusal(t, err)
				if re.Rule != RuleSeccomp || !strings.Contains(err.Error(), tt.want) {
					t.Errorf("pass %d: got %v, want %q", pass, err, tt.want)
				}
				if strings.Count(err.Error(), ErrRefused.Error()) != 1 {
					t.Errorf("nested refusal: %v", err)
				}
			}
		})
	}
}

// TestCompileContainerdDefault compiles containerd's default filter for a
// wide capability set on every architecture list: all its names resolve
// or are ignored the way runc ignores them.
func TestCompileContainerdDefault(t *testing.T) {
	for _, prof := range profileNames {
		for _, name := range goldenSpecs {
			out, _, err := Harden(loadSpec(t, name), cfgFor(t, prof))
			if err != nil {
				continue // refused (strict, uid 0)
			}
			if err := compileLikeRuncUncached(out.Linux.Seccomp); err != nil {
				t.Errorf("%s/%s: %v", prof, name, err)
			}
		}
	}
}

func TestFilterKey(t *testing.T) {
	one := uint(1)
	base := func() *specs.LinuxSeccomp {
		return &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{{Names: []string{"ab", "c"}, Action: specs.ActAllow}}}
	}
	variants := []func(*specs.LinuxSeccomp){
		func(sc *specs.LinuxSeccomp) {},
		func(sc *specs.LinuxSeccomp) { sc.Syscalls[0].Names = []string{"a", "bc"} },
		func(sc *specs.LinuxSeccomp) { sc.Syscalls[0].Names = []string{"abc"} },
		func(sc *specs.LinuxSeccomp) { sc.DefaultErrnoRet = &one },
		func(sc *specs.LinuxSeccomp) { sc.Syscalls[0].ErrnoRet = &one },
		func(sc *specs.LinuxSeccomp) { sc.Architectures = []specs.Arch{specs.ArchX86} },
		func(sc *specs.LinuxSeccomp) { sc.Flags = []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagLog} },
		func(sc *specs.LinuxSeccomp) { sc.ListenerPath = "/x" },
		func(sc *specs.LinuxSeccomp) {
			sc.Syscalls[0].Args = []specs.LinuxSeccompArg{{Index: 1, Value: 2, Op: specs.OpEqualTo}}
		},
		func(sc *specs.LinuxSeccomp) {
			sc.Syscalls = append(sc.Syscalls, specs.LinuxSyscall{Action: specs.ActAllow})
		},
	}
	seen := map[string]int{}
	for i, v := range variants {
		sc := base()
		v(sc)
		k := filterKey(sc)
		if j, ok := seen[k]; ok {
			t.Errorf("variants %d and %d share a key", j, i)
		}
		seen[k] = i
	}
}
