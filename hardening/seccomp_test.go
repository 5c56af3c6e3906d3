package hardening

import (
	"runtime"
	"slices"
	"strings"
	"testing"

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
			cfg := cfgFor(t, "restricted")
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
				{Names: []string{"ptrace"}, Action: specs.ActNotify, Args: arg},
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
		cfg := cfgFor(t, "restricted")
		cfg.Backend, cfg.RunscOCISeccomp = BackendGVisor, oci
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
	cfg := cfgFor(t, "restricted")
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
	cfg := cfgFor(t, "restricted")
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
		}, "lets ptrace run"},
		{"other arches", func(sc *specs.LinuxSeccomp) *specs.LinuxSeccomp {
			sc.Architectures = append(sc.Architectures, specs.ArchX86)
			return sc
		}, "allows"},
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
