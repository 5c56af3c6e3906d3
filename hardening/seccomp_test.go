package hardening

import (
	"runtime"
	"slices"
	"strings"
	"testing"

	cseccomp "github.com/containerd/containerd/v2/contrib/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hardened-dev/hardened/profiles"
)

// allowedNames returns the names a filter lets run, unconditionally or
// not, and whether each is unconditional.
func allowedNames(sc *specs.LinuxSeccomp) map[string]bool {
	out := map[string]bool{}
	for _, r := range sc.Syscalls {
		if denies(r.Action) {
			continue
		}
		for _, n := range r.Names {
			out[n] = out[n] || len(r.Args) == 0
		}
	}
	return out
}

func seccompProfile(base string, deny []string, native bool, caps ...string) *profiles.Profile {
	return &profiles.Profile{
		Name:         "test",
		Capabilities: profiles.Capabilities{Allowed: caps},
		Seccomp:      profiles.Seccomp{Base: base, Deny: deny, NativeArchOnly: native},
	}
}

func TestSeccompGenerated(t *testing.T) {
	native, err := nativeArch()
	if err != nil {
		t.Skip(err)
	}
	tests := []struct {
		name     string
		in       *specs.LinuxSeccomp
		replaced bool
	}{
		{"none", nil, true},
		{"disabled", &specs.LinuxSeccomp{}, true},
		{"unconfined allow", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"mount"}, Action: specs.ActErrno}}}, true},
		{"log", &specs.LinuxSeccomp{DefaultAction: specs.ActLog}, true},
		{"trace", &specs.LinuxSeccomp{DefaultAction: specs.ActTrace}, true},
		{"unknown default action", &specs.LinuxSeccomp{DefaultAction: "SCMP_ACT_MAYBE"}, true},
		{"own errno filter kept", &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{{Names: []string{"read", "write"}, Action: specs.ActAllow}}}, false},
		{"own kill filter kept", &specs.LinuxSeccomp{DefaultAction: specs.ActKillProcess, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActAllow}}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := baseSpec()
			s.Linux.Seccomp = tt.in
			cfg := cfgFor(t, "hardened")
			out, rep, err := Harden(s, cfg)
			if err != nil {
				t.Fatal(err)
			}
			sc := out.Linux.Seccomp
			if sc == nil || !denies(sc.DefaultAction) {
				t.Fatalf("filter %+v", sc)
			}
			if !nativeOnly(sc.Architectures, native) {
				t.Errorf("architectures %v", sc.Architectures)
			}
			generated := len(sc.Syscalls) > 10
			if generated != tt.replaced {
				t.Errorf("replaced=%v, want %v (%d rules)", generated, tt.replaced, len(sc.Syscalls))
			}
			allowed := allowedNames(sc)
			for _, d := range cfg.Profile.Seccomp.Deny {
				if _, ok := allowed[d]; ok {
					t.Errorf("denied %s is allowed", d)
				}
			}
			found := false
			for _, c := range rep.Changes {
				found = found || c.Rule == RuleSeccomp
			}
			if !found {
				t.Errorf("no seccomp change reported: %+v", rep.Changes)
			}
		})
	}
}

// TestSeccompAfterCapabilityDrop checks the filter is generated for the
// capabilities left, not for those the spec asked for: CAP_SYS_ADMIN would
// open mount, unshare, setns, bpf ... in containerd's default filter.
func TestSeccompAfterCapabilityDrop(t *testing.T) {
	admin := []string{"CAP_SYS_ADMIN", "CAP_SYS_PTRACE", "CAP_SYS_MODULE"}
	s := baseSpec()
	s.Process.Capabilities = &specs.LinuxCapabilities{Bounding: admin, Effective: admin, Permitted: admin}
	adminOnly := []string{"mount", "umount2", "unshare", "setns", "bpf", "fsopen", "init_module", "kcmp", "pidfd_getfd"}

	// The ceiling drops them all: none of their syscalls is open.
	cfg := Config{Profile: seccompProfile("default", nil, false, "CAP_CHOWN")}
	out, _, err := Harden(s, cfg)
	if err != nil {
		t.Fatal(err)
	}
	allowed := allowedNames(out.Linux.Seccomp)
	for _, n := range adminOnly {
		if _, ok := allowed[n]; ok {
			t.Errorf("%s allowed after CAP_SYS_ADMIN/PTRACE/MODULE were dropped", n)
		}
	}
	// clone is allowed only without namespace flags then.
	if allowed["clone"] {
		t.Errorf("clone allowed unconditionally without CAP_SYS_ADMIN")
	}

	// A profile keeping CAP_SYS_ADMIN gets the syscalls it opens, minus Deny.
	cfg = Config{Profile: seccompProfile("default", []string{"mount", "kcmp"}, false, admin...)}
	out, _, err = Harden(s, cfg)
	if err != nil {
		t.Fatal(err)
	}
	allowed = allowedNames(out.Linux.Seccomp)
	for _, n := range adminOnly {
		_, ok := allowed[n]
		if want := n != "mount" && n != "kcmp"; ok != want {
			t.Errorf("%s allowed=%v, want %v", n, ok, want)
		}
	}
}

func TestSeccompDeny(t *testing.T) {
	eperm := uint(1)
	enosys := uint(38)
	arg := []specs.LinuxSeccompArg{{Index: 0, Value: 1, Op: specs.OpEqualTo}}
	tests := []struct {
		name    string
		deny    []string
		in      *specs.LinuxSeccomp
		want    *specs.LinuxSeccomp
		changes int
	}{
		{
			name: "errno default: names leave allow rules, nothing added",
			deny: []string{"ptrace", "bpf"},
			in: &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{
				{Names: []string{"read", "ptrace", "write"}, Action: specs.ActAllow},
				{Names: []string{"bpf"}, Action: specs.ActLog},
				{Names: []string{"clone3"}, Action: specs.ActErrno, ErrnoRet: &enosys},
				{Names: []string{"ptrace"}, Action: specs.ActTrace, Args: arg},
			}},
			want: &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{
				{Names: []string{"read", "write"}, Action: specs.ActAllow},
				{Names: []string{"clone3"}, Action: specs.ActErrno, ErrnoRet: &enosys},
			}},
			changes: 1,
		},
		{
			name: "allow default: explicit EPERM rule for what is not denied unconditionally",
			deny: []string{"mount", "bpf", "keyctl", "ptrace"},
			in: &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
				{Names: []string{"mount"}, Action: specs.ActKill},
				{Names: []string{"bpf", "getpid"}, Action: specs.ActKill, Args: arg},
				{Names: []string{"keyctl", "getppid"}, Action: specs.ActLog},
			}},
			want: &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
				{Names: []string{"mount"}, Action: specs.ActKill},
				{Names: []string{"getpid"}, Action: specs.ActKill, Args: arg},
				{Names: []string{"getppid"}, Action: specs.ActLog},
				{Names: []string{"bpf", "keyctl", "ptrace"}, Action: specs.ActErrno, ErrnoRet: &eperm},
			}},
			changes: 2,
		},
		{
			name:    "base none, no filter: deny on an allow default",
			deny:    []string{"ptrace"},
			in:      nil,
			want:    &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"ptrace"}, Action: specs.ActErrno, ErrnoRet: &eperm}}},
			changes: 2,
		},
		{
			name:    "base none, no deny: nothing",
			in:      nil,
			want:    nil,
			changes: 0,
		},
		{
			name:    "base none, no deny: a weak filter stays as it is",
			in:      &specs.LinuxSeccomp{DefaultAction: specs.ActLog},
			want:    &specs.LinuxSeccomp{DefaultAction: specs.ActLog},
			changes: 0,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := baseSpec()
			s.Linux.Seccomp = tt.in
			cfg := Config{Profile: seccompProfile("", tt.deny, false)}
			out, rep, err := Harden(s, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := mustJSON(t, out.Linux.Seccomp), mustJSON(t, tt.want); got != want {
				t.Errorf("filter\n got %s\nwant %s", got, want)
			}
			n := 0
			for _, c := range rep.Changes {
				if c.Rule == RuleSeccomp {
					n++
				}
			}
			if n != tt.changes {
				t.Errorf("%d seccomp changes, want %d: %+v", n, tt.changes, rep.Changes)
			}
			// Idempotent.
			again, rep2, err := Harden(out, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if mustJSON(t, again) != mustJSON(t, out) || len(rep2.Changes) != 0 {
				t.Errorf("not idempotent: %+v", rep2.Changes)
			}
		})
	}
}

func TestSeccompNativeArch(t *testing.T) {
	native, err := nativeArch()
	if err != nil {
		t.Skip(err)
	}
	s := baseSpec()
	s.Linux.Seccomp = &specs.LinuxSeccomp{
		DefaultAction: specs.ActErrno,
		Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32, specs.ArchAARCH64, specs.ArchARM},
		Syscalls:      []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActAllow}},
	}
	out, _, err := Harden(s, Config{Profile: seccompProfile("default", nil, true)})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(out.Linux.Seccomp.Architectures, []specs.Arch{native}) {
		t.Errorf("architectures %v", out.Linux.Seccomp.Architectures)
	}
	// Without NativeArchOnly, containerd's list of ABIs is kept.
	out, _, err = Harden(baseSpec(), Config{Profile: seccompProfile("default", nil, false)})
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOARCH == "amd64" && len(out.Linux.Seccomp.Architectures) != 3 {
		t.Errorf("architectures %v", out.Linux.Seccomp.Architectures)
	}
}

func TestSeccompGVisorGap(t *testing.T) {
	for _, oci := range []bool{false, true} {
		cfg := cfgFor(t, "hardened")
		cfg.Runtime, cfg.RunscOCISeccomp = profiles.RuntimeGVisor, oci
		_, rep, err := Harden(baseSpec(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		gap := slices.ContainsFunc(rep.NotEnforced, func(g Gap) bool { return g.Rule == RuleSeccomp })
		if gap == oci {
			t.Errorf("--oci-seccomp=%v: seccomp gap %v (%+v)", oci, gap, rep.NotEnforced)
		}
	}
}

// TestGeneratedFilterCache checks the cache never leaks one spec's filter
// into another: outputs are independent copies.
func TestGeneratedFilterCache(t *testing.T) {
	cfg := cfgFor(t, "hardened")
	a, _, err := Harden(baseSpec(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	before := mustJSON(t, a.Linux.Seccomp)
	a.Linux.Seccomp.Syscalls[0].Names[0] = "mutated"
	a.Linux.Seccomp.Syscalls = nil
	b, _, err := Harden(baseSpec(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if mustJSON(t, b.Linux.Seccomp) != before {
		t.Fatal("a mutated output changed the next one: the cached filter is shared")
	}
}

func TestCheckSeccomp(t *testing.T) {
	cfg := cfgFor(t, "hardened")
	good, _, err := Harden(baseSpec(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		mutate func(*specs.LinuxSeccomp) *specs.LinuxSeccomp
		want   string // in the reason
	}{
		{"removed", func(*specs.LinuxSeccomp) *specs.LinuxSeccomp { return nil }, "is none"},
		{"allow default", func(sc *specs.LinuxSeccomp) *specs.LinuxSeccomp { sc.DefaultAction = specs.ActAllow; return sc }, "default action denies"},
		{"denied name allowed", func(sc *specs.LinuxSeccomp) *specs.LinuxSeccomp {
			sc.Syscalls = append(sc.Syscalls, specs.LinuxSyscall{Names: []string{"bpf"}, Action: specs.ActAllow})
			return sc
		}, "lets bpf run"},
		{"denied name notified", func(sc *specs.LinuxSeccomp) *specs.LinuxSeccomp {
			sc.Syscalls = append(sc.Syscalls, specs.LinuxSyscall{Names: []string{"ptrace"}, Action: specs.ActNotify})
			return sc
		}, "hands ptrace to a listener"},
		{"denied name traced", func(sc *specs.LinuxSeccomp) *specs.LinuxSeccomp {
			sc.Syscalls = append(sc.Syscalls, specs.LinuxSyscall{Names: []string{"ptrace"}, Action: specs.ActTrace})
			return sc
		}, "lets ptrace run"},
		{"other arches", func(sc *specs.LinuxSeccomp) *specs.LinuxSeccomp {
			sc.Architectures = append(sc.Architectures, specs.ArchX86)
			return sc
		}, "allows"},
		{"beyond the base", func(sc *specs.LinuxSeccomp) *specs.LinuxSeccomp {
			sc.Syscalls = append(sc.Syscalls, specs.LinuxSyscall{Names: []string{"chroot"}, Action: specs.ActAllow})
			return sc
		}, "lets chroot run: the base filter"},
		{"spec allow flag", func(sc *specs.LinuxSeccomp) *specs.LinuxSeccomp {
			sc.Flags = append(sc.Flags, specs.LinuxSeccompFlagSpecAllow)
			return sc
		}, "speculative store bypass"},
		{"unknown action", func(sc *specs.LinuxSeccomp) *specs.LinuxSeccomp {
			sc.Syscalls = append(sc.Syscalls, specs.LinuxSyscall{Names: []string{"read"}, Action: "SCMP_ACT_SOMETIMES"})
			return sc
		}, "runc would reject"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := deepCopy(good)
			s.Linux.Seccomp = tt.mutate(s.Linux.Seccomp)
			re := refusal(t, Validate(s, cfg))
			if re.Rule != RuleSeccomp || !strings.Contains(re.Reason, tt.want) {
				t.Errorf("got %+v, want reason with %q", re, tt.want)
			}
		})
	}
}

// localhostFilter is a Kubernetes Localhost profile of the kind that lets
// everything run but a few syscalls, with rules of every blocking kind.
func localhostFilter() *specs.LinuxSeccomp {
	eacces := uint(13)
	return &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchAARCH64},
		Flags:         []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagSpecAllow, "SECCOMP_FILTER_FLAG_TSYNC"},
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"chmod", "fchmod"}, Action: specs.ActErrno},
			{Names: []string{"kexec_load", "flock"}, Action: specs.ActKillProcess},
			{Names: []string{"fchmodat"}, Action: specs.ActErrno, ErrnoRet: &eacces,
				Args: []specs.LinuxSeccompArg{{Index: 2, Value: 0o4000, ValueTwo: 0o4000, Op: specs.OpMaskedEqual}}},
			{Names: []string{"clone3"}, Action: specs.ActKill},
			{Names: []string{"mknod", "ptrace"}, Action: specs.ActTrace},
			{Names: []string{"getpid"}, Action: specs.ActLog},
		},
	}
}

// hardenSeccomp hardens a base spec carrying sc under cfg, and checks the
// seccomp properties every case shares: the output is not looser than sc,
// and hardening it again changes nothing and reports nothing.
func hardenSeccomp(t *testing.T, sc *specs.LinuxSeccomp, cfg Config) (*specs.LinuxSeccomp, *Report) {
	t.Helper()
	s := baseSpec()
	s.Linux.Seccomp = sc
	out, rep, err := Harden(s, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if why := seccompLoosened(sc, out.Linux.Seccomp); why != "" {
		t.Fatalf("loosened: %s", why)
	}
	again, rep2, err := Harden(out, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if mustJSON(t, again) != mustJSON(t, out) || len(rep2.Changes) != 0 {
		t.Fatalf("not idempotent: %+v", rep2.Changes)
	}
	return out.Linux.Seccomp, rep
}

// rulesFor returns the rules of sc that list name.
func rulesFor(sc *specs.LinuxSeccomp, name string) []specs.LinuxSyscall {
	var out []specs.LinuxSyscall
	for _, r := range sc.Syscalls {
		if slices.Contains(r.Names, name) {
			out = append(out, r)
		}
	}
	return out
}

func seccompChange(rep *Report, field, in string) bool {
	return slices.ContainsFunc(rep.Changes, func(c Change) bool {
		return c.Rule == RuleSeccomp && c.Field == field && strings.Contains(c.Before+" "+c.After, in)
	})
}

// TestSeccompWeakFilterMerged: a filter whose default action lets syscalls
// run is not "unconfined" when its rules block some (a Kubernetes
// Localhost profile "allow all but chmod"): the base filter is merged with
// those rules, never substituted for them (TestCRILocalhostSeccompKept).
func TestSeccompWeakFilterMerged(t *testing.T) {
	eperm, eacces := uint(1), uint(13)
	setuid := []specs.LinuxSeccompArg{{Index: 2, Value: 0o4000, ValueTwo: 0o4000, Op: specs.OpMaskedEqual}}
	allow := func(rules ...specs.LinuxSyscall) *specs.LinuxSeccomp {
		return &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: rules}
	}
	tests := []struct {
		name  string
		in    *specs.LinuxSeccomp
		check func(t *testing.T, out *specs.LinuxSeccomp, rep *Report)
	}{
		{"errno rule: chmod stays denied", allow(specs.LinuxSyscall{Names: []string{"chmod"}, Action: specs.ActErrno}),
			func(t *testing.T, out *specs.LinuxSeccomp, rep *Report) {
				if _, ok := allowedNames(out)["chmod"]; ok || !blockedUnconditionally(out, "chmod") {
					t.Errorf("chmod allowed: %+v", rulesFor(out, "chmod"))
				}
				if len(rulesFor(out, "chmod")) != 0 {
					t.Errorf("a rule duplicating the default action: %+v", rulesFor(out, "chmod"))
				}
				if !seccompChange(rep, "linux.seccomp.syscalls", "allowed chmod") {
					t.Errorf("not reported: %+v", rep.Changes)
				}
			}},
		{"errno(EPERM) rule: same as the default, not carried", allow(specs.LinuxSyscall{Names: []string{"chmod"}, Action: specs.ActErrno, ErrnoRet: &eperm}),
			func(t *testing.T, out *specs.LinuxSeccomp, rep *Report) {
				if len(rulesFor(out, "chmod")) != 0 {
					t.Errorf("chmod rules %+v", rulesFor(out, "chmod"))
				}
			}},
		{"kill rule kept as kill", allow(specs.LinuxSyscall{Names: []string{"flock"}, Action: specs.ActKillProcess}),
			func(t *testing.T, out *specs.LinuxSeccomp, rep *Report) {
				want := []specs.LinuxSyscall{{Names: []string{"flock"}, Action: specs.ActKillProcess}}
				if got := rulesFor(out, "flock"); mustJSON(t, got) != mustJSON(t, want) {
					t.Errorf("flock rules %+v", got)
				}
				if !seccompChange(rep, "linux.seccomp.syscalls", "SCMP_ACT_KILL_PROCESS flock") {
					t.Errorf("not reported: %+v", rep.Changes)
				}
			}},
		{"conditional errno rule: name removed from allow rules, rule carried", allow(specs.LinuxSyscall{Names: []string{"fchmodat"}, Action: specs.ActErrno, ErrnoRet: &eacces, Args: setuid}),
			func(t *testing.T, out *specs.LinuxSeccomp, rep *Report) {
				want := []specs.LinuxSyscall{{Names: []string{"fchmodat"}, Action: specs.ActErrno, ErrnoRet: &eacces, Args: setuid}}
				if got := rulesFor(out, "fchmodat"); mustJSON(t, got) != mustJSON(t, want) {
					t.Errorf("fchmodat rules %+v", got)
				}
			}},
		{"kill on clone3 replaces the base's ENOSYS", allow(specs.LinuxSyscall{Names: []string{"clone3"}, Action: specs.ActKill}),
			func(t *testing.T, out *specs.LinuxSeccomp, rep *Report) {
				want := []specs.LinuxSyscall{{Names: []string{"clone3"}, Action: specs.ActKill}}
				if got := rulesFor(out, "clone3"); mustJSON(t, got) != mustJSON(t, want) {
					t.Errorf("clone3 rules %+v", got)
				}
			}},
		{"trace: carried where the base allows, the default where it denies", allow(specs.LinuxSyscall{Names: []string{"mknod", "reboot"}, Action: specs.ActTrace}),
			func(t *testing.T, out *specs.LinuxSeccomp, rep *Report) {
				want := []specs.LinuxSyscall{{Names: []string{"mknod"}, Action: specs.ActTrace}}
				if got := rulesFor(out, "mknod"); mustJSON(t, got) != mustJSON(t, want) {
					t.Errorf("mknod rules %+v", got)
				}
				if got := rulesFor(out, "reboot"); len(got) != 0 {
					t.Errorf("reboot, denied by the base, deferred: %+v", got)
				}
				if !seccompChange(rep, "linux.seccomp.syscalls", "deferred reboot") {
					t.Errorf("not reported: %+v", rep.Changes)
				}
			}},
		{"trace carried where the base allows", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow,
			Syscalls: []specs.LinuxSyscall{{Names: []string{"mknod", "kexec_load"}, Action: specs.ActTrace}}},
			func(t *testing.T, out *specs.LinuxSeccomp, rep *Report) {
				want := []specs.LinuxSyscall{{Names: []string{"mknod"}, Action: specs.ActTrace}}
				if got := rulesFor(out, "mknod"); mustJSON(t, got) != mustJSON(t, want) {
					t.Errorf("mknod rules %+v", got)
				}
				if len(rulesFor(out, "kexec_load")) != 0 {
					t.Errorf("kexec_load deferred")
				}
			}},
		{"SPEC_ALLOW stripped, other flags kept", &specs.LinuxSeccomp{DefaultAction: specs.ActLog,
			Flags: []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagSpecAllow, "SECCOMP_FILTER_FLAG_TSYNC", specs.LinuxSeccompFlagLog}},
			func(t *testing.T, out *specs.LinuxSeccomp, rep *Report) {
				if want := []specs.LinuxSeccompFlag{"SECCOMP_FILTER_FLAG_TSYNC", specs.LinuxSeccompFlagLog}; !slices.Equal(out.Flags, want) {
					t.Errorf("flags %v", out.Flags)
				}
				if !seccompChange(rep, "linux.seccomp.flags", string(specs.LinuxSeccompFlagSpecAllow)) {
					t.Errorf("not reported: %+v", rep.Changes)
				}
			}},
		{"a Localhost profile", localhostFilter(),
			func(t *testing.T, out *specs.LinuxSeccomp, rep *Report) {
				allowed := allowedNames(out)
				for _, n := range []string{"chmod", "fchmod", "kexec_load", "flock", "clone3", "fchmodat"} {
					if _, ok := allowed[n]; ok {
						t.Errorf("%s allowed", n)
					}
				}
				if got := rulesFor(out, "mknod"); len(got) != 1 || got[0].Action != specs.ActTrace {
					t.Errorf("mknod rules %+v", got)
				}
			}},
	}
	for _, prof := range []string{"baseline", "hardened"} {
		for _, tt := range tests {
			t.Run(prof+"/"+tt.name, func(t *testing.T) {
				out, rep := hardenSeccomp(t, tt.in, cfgFor(t, prof))
				if !denies(out.DefaultAction) || len(out.Syscalls) < 10 {
					t.Fatalf("not the base filter: %s", describeFilter(out))
				}
				tt.check(t, out, rep)
			})
		}
	}
}

// TestSeccompArchitectures: the output never covers an ABI the spec's
// filter did not (a filter kills the syscalls of the ABIs it does not
// list, the native one aside).
func TestSeccompArchitectures(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("architecture lists are amd64's")
	}
	x86_64, x86, x32, aarch64, arm := specs.ArchX86_64, specs.ArchX86, specs.ArchX32, specs.ArchAARCH64, specs.ArchARM
	tests := []struct {
		name     string
		in       *specs.LinuxSeccomp
		baseline []specs.Arch // hardened: always x86_64 only
	}{
		{"no filter: containerd's list", nil, []specs.Arch{x86_64, x86, x32}},
		{"allow default, intersection", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Architectures: []specs.Arch{aarch64, x86_64, x86}}, []specs.Arch{x86_64, x86}},
		{"allow default, none listed: native only", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow}, nil},
		{"allow default, empty intersection: the spec's", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Architectures: []specs.Arch{arm}}, []specs.Arch{arm}},
		{"kept filter, intersection", &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Architectures: []specs.Arch{x86_64, aarch64, arm, x32},
			Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActAllow}}}, []specs.Arch{x86_64, x32}},
		{"kept filter, none listed", &specs.LinuxSeccomp{DefaultAction: specs.ActErrno,
			Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActAllow}}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, _ := hardenSeccomp(t, tt.in, cfgFor(t, "baseline"))
			if !slices.Equal(out.Architectures, tt.baseline) {
				t.Errorf("baseline: %v, want %v", out.Architectures, tt.baseline)
			}
			out, _ = hardenSeccomp(t, tt.in, cfgFor(t, "hardened"))
			if !slices.Equal(out.Architectures, []specs.Arch{x86_64}) {
				t.Errorf("hardened: %v", out.Architectures)
			}
		})
	}
}

// TestSeccompKeptFilterWithinBase: a kept filter (default action denies)
// allows nothing the base filter does not allow for the capabilities left.
func TestSeccompKeptFilterWithinBase(t *testing.T) {
	eq := func(v uint64) []specs.LinuxSeccompArg {
		return []specs.LinuxSeccompArg{{Index: 0, Value: v, Op: specs.OpEqualTo}}
	}
	errno := func(rules ...specs.LinuxSyscall) *specs.LinuxSeccomp {
		return &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: rules}
	}
	enosys := uint(38)
	tests := []struct {
		name  string
		in    *specs.LinuxSeccomp
		check func(t *testing.T, out *specs.LinuxSeccomp, rep *Report)
	}{
		{"names the base denies leave the allow rules",
			&specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{
				{Names: []string{"read", "kexec_load", "chroot", "not_a_syscall"}, Action: specs.ActAllow},
				{Names: []string{"getppid", "reboot"}, Action: specs.ActTrace}}},
			func(t *testing.T, out *specs.LinuxSeccomp, rep *Report) {
				want := []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActAllow}, {Names: []string{"getppid"}, Action: specs.ActTrace}}
				if got := mustJSON(t, out.Syscalls); got != mustJSON(t, want) {
					t.Errorf("rules %s", got)
				}
				if !seccompChange(rep, "linux.seccomp.syscalls", "allowed kexec_load,chroot,not_a_syscall,reboot") {
					t.Errorf("not reported: %+v", rep.Changes)
				}
			}},
		{"unconditional clone narrowed to the base's condition, clone3 gets the base's ENOSYS",
			errno(specs.LinuxSyscall{Names: []string{"read", "clone", "clone3"}, Action: specs.ActAllow}),
			func(t *testing.T, out *specs.LinuxSeccomp, rep *Report) {
				clone := rulesFor(out, "clone")
				if len(clone) != 1 || len(clone[0].Args) != 1 || clone[0].Args[0].Op != specs.OpMaskedEqual || clone[0].Action != specs.ActAllow {
					t.Errorf("clone rules %+v", clone)
				}
				want := []specs.LinuxSyscall{{Names: []string{"clone3"}, Action: specs.ActErrno, ErrnoRet: &enosys}}
				if got := rulesFor(out, "clone3"); mustJSON(t, got) != mustJSON(t, want) {
					t.Errorf("clone3 rules %+v", got)
				}
			}},
		{"clone3 blocked by the kept filter itself: no second rule",
			errno(specs.LinuxSyscall{Names: []string{"clone3"}, Action: specs.ActAllow}, specs.LinuxSyscall{Names: []string{"clone3"}, Action: specs.ActKill, Args: eq(0)}),
			func(t *testing.T, out *specs.LinuxSeccomp, rep *Report) {
				want := []specs.LinuxSyscall{{Names: []string{"clone3"}, Action: specs.ActKill, Args: eq(0)}}
				if got := rulesFor(out, "clone3"); mustJSON(t, got) != mustJSON(t, want) {
					t.Errorf("clone3 rules %+v", got)
				}
			}},
		{"conditional rules: kept within the base's conditions, removed beyond",
			errno(specs.LinuxSyscall{Names: []string{"socket"}, Action: specs.ActAllow, Args: eq(2)}, // AF_INET: within socket(domain < 38)
				specs.LinuxSyscall{Names: []string{"socket"}, Action: specs.ActAllow, Args: eq(40)}, // AF_VSOCK: not in containerd's list
				specs.LinuxSyscall{Names: []string{"personality"}, Action: specs.ActLog, Args: eq(8)}),
			func(t *testing.T, out *specs.LinuxSeccomp, rep *Report) {
				want := []specs.LinuxSyscall{{Names: []string{"socket"}, Action: specs.ActAllow, Args: eq(2)}, {Names: []string{"personality"}, Action: specs.ActLog, Args: eq(8)}}
				if got := mustJSON(t, out.Syscalls); got != mustJSON(t, want) {
					t.Errorf("rules %s", got)
				}
				if !seccompChange(rep, "linux.seccomp.syscalls", "socket (conditional)") {
					t.Errorf("not reported: %+v", rep.Changes)
				}
			}},
		{"SPEC_ALLOW stripped from a kept filter",
			&specs.LinuxSeccomp{DefaultAction: specs.ActKillProcess, Flags: []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagSpecAllow},
				Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActAllow}}},
			func(t *testing.T, out *specs.LinuxSeccomp, rep *Report) {
				if len(out.Flags) != 0 || !seccompChange(rep, "linux.seccomp.flags", "SPEC_ALLOW") {
					t.Errorf("flags %v, changes %+v", out.Flags, rep.Changes)
				}
			}},
		{"containerd's default for more capabilities becomes the one for those left",
			cseccomp.DefaultProfile(&specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{Bounding: []string{"CAP_SYS_ADMIN", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE"}}}}),
			func(t *testing.T, out *specs.LinuxSeccomp, rep *Report) {
				g, err := generatedFilter([]string{"CAP_NET_BIND_SERVICE"}, &profiles.Seccomp{Base: "default"})
				if err != nil {
					t.Fatal(err)
				}
				got, want := allowedNames(out), allowedNames(g.filter)
				for n, u := range got {
					if w, ok := want[n]; !ok || w != u {
						t.Errorf("%s allowed (unconditionally: %v); containerd's default for the capabilities left: %v %v", n, u, ok, w)
					}
				}
				for n := range want {
					if _, ok := got[n]; !ok {
						t.Errorf("%s, allowed by both, removed", n)
					}
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Config{Profile: seccompProfile("default", nil, false, "CAP_NET_BIND_SERVICE")}
			out, rep := hardenSeccomp(t, tt.in, cfg)
			tt.check(t, out, rep)
		})
	}
}

// TestSeccompBaseNoneFlags: without a base filter the spec's filter is kept
// as it is, but for the flag that turns a mitigation off.
func TestSeccompBaseNoneFlags(t *testing.T) {
	for _, def := range []specs.LinuxSeccompAction{specs.ActAllow, specs.ActErrno} {
		in := &specs.LinuxSeccomp{DefaultAction: def, Flags: []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagSpecAllow},
			Syscalls: []specs.LinuxSyscall{{Names: []string{"kexec_load"}, Action: specs.ActAllow}}}
		out, rep := hardenSeccomp(t, in, Config{Profile: seccompProfile("", nil, false)})
		n := 0
		for _, c := range rep.Changes {
			if c.Rule == RuleSeccomp {
				n++
			}
		}
		if len(out.Flags) != 0 || n != 1 || len(out.Syscalls) != 1 {
			t.Errorf("%s: %+v, changes %+v", def, out, rep.Changes)
		}
	}
}

func TestArgsWithin(t *testing.T) {
	arg := func(i uint, op specs.LinuxSeccompOperator, v uint64) specs.LinuxSeccompArg {
		return specs.LinuxSeccompArg{Index: i, Op: op, Value: v}
	}
	lt38 := []specs.LinuxSeccompArg{arg(0, specs.OpLessThan, 38)}
	noNS := []specs.LinuxSeccompArg{{Index: 0, Op: specs.OpMaskedEqual, Value: 0x7e020000}}
	tests := []struct {
		name string
		c, d []specs.LinuxSeccompArg
		want bool
	}{
		{"identical", noNS, noNS, true},
		{"eq within lt", []specs.LinuxSeccompArg{arg(0, specs.OpEqualTo, 2)}, lt38, true},
		{"eq beyond lt", []specs.LinuxSeccompArg{arg(0, specs.OpEqualTo, 38)}, lt38, false},
		{"eq on another index", []specs.LinuxSeccompArg{arg(1, specs.OpEqualTo, 2)}, lt38, false},
		{"and with another index", []specs.LinuxSeccompArg{arg(1, specs.OpEqualTo, 7), arg(0, specs.OpEqualTo, 2)}, lt38, true},
		{"lt within lt", []specs.LinuxSeccompArg{arg(0, specs.OpLessThan, 10)}, lt38, true},
		{"le beyond lt", []specs.LinuxSeccompArg{arg(0, specs.OpLessEqual, 38)}, lt38, false},
		{"gt never within lt", []specs.LinuxSeccompArg{arg(0, specs.OpGreaterThan, 2)}, lt38, false},
		{"gt within ge", []specs.LinuxSeccompArg{arg(0, specs.OpGreaterThan, 4)}, []specs.LinuxSeccompArg{arg(0, specs.OpGreaterEqual, 5)}, true},
		{"eq within masked", []specs.LinuxSeccompArg{arg(0, specs.OpEqualTo, 0x11)}, noNS, true},
		{"eq beyond masked", []specs.LinuxSeccompArg{arg(0, specs.OpEqualTo, 0x20000)}, noNS, false},
		{"repeated index: runc ORs them", []specs.LinuxSeccompArg{arg(0, specs.OpEqualTo, 2), arg(0, specs.OpEqualTo, 40)}, lt38, false},
		{"repeated index, each within", []specs.LinuxSeccompArg{arg(0, specs.OpEqualTo, 2), arg(0, specs.OpEqualTo, 10)}, lt38, true},
		{"wider than 32 bits", []specs.LinuxSeccompArg{arg(0, specs.OpEqualTo, 1<<32+2)}, []specs.LinuxSeccompArg{arg(0, specs.OpGreaterThan, 5)}, false},
		{"unknown operator", []specs.LinuxSeccompArg{arg(0, "SCMP_CMP_MAYBE", 2)}, lt38, false},
	}
	for _, tt := range tests {
		if got := argsWithin(tt.c, tt.d); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}
