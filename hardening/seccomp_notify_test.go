package hardening

import (
	"slices"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestNotifyDenialsBuiltins converts the filter every built-in profile
// gives containerd's default spec: each converted filter compiles the way
// runc compiles it, notifies what the default action and the unconditional
// errno rules denied (unshare without CAP_SYS_ADMIN, the profiles' deny
// lists) and nothing the filter allowed, answers with the filter's errno,
// and leaves write, clone3's ENOSYS and the conditional rules as they were.
func TestNotifyDenialsBuiltins(t *testing.T) {
	for _, name := range profileNames {
		t.Run(name, func(t *testing.T) {
			spec := loadSpec(t, "containerd-default")
			spec.Process.User.UID, spec.Process.User.GID = 1000, 1000
			out, _, err := Harden(spec, cfgFor(t, name))
			if err != nil {
				t.Fatal(err)
			}
			sc := out.Linux.Seccomp
			before := CloneSeccomp(sc)
			n, err := NotifyDenials(sc, "/run/hardened/seccomp/x.sock")
			if err != nil {
				t.Fatal(err)
			}
			if n == nil {
				t.Fatal("nothing to notify in a default-errno filter")
			}
			if sc.ListenerPath != "/run/hardened/seccomp/x.sock" || sc.DefaultAction != before.DefaultAction {
				t.Fatalf("listener %q, default %s", sc.ListenerPath, sc.DefaultAction)
			}
			notified := map[string]bool{}
			for _, r := range sc.Syscalls {
				if r.Action == specs.ActNotify {
					for _, nm := range r.Names {
						notified[nm] = true
					}
				}
			}
			for _, want := range []string{"unshare", "kexec_load", "init_module"} {
				if !notified[want] {
					t.Errorf("%s is not notified", want)
				}
				if got := n.Answer(want); got != uint(syscall.EPERM) {
					t.Errorf("%s answered %d, want EPERM", want, got)
				}
			}
			for _, never := range []string{"write", "read", "clone3", "clone", "socket", "openat", "execve"} {
				if notified[never] {
					t.Errorf("%s is notified", never)
				}
			}
			if name != "baseline" && !notified["io_uring_setup"] {
				t.Error("a profile's deny list is not notified")
			}
			// Every rule of the original filter that is not an unconditional
			// errno rule is still there.
			for _, r := range before.Syscalls {
				if r.Action == specs.ActErrno && len(r.Args) == 0 && errnoOf(r.ErrnoRet) != uint(syscall.ENOSYS) {
					continue
				}
				if !slices.ContainsFunc(sc.Syscalls, func(o specs.LinuxSyscall) bool { return slices.Equal(o.Names, r.Names) && o.Action == r.Action }) {
					t.Errorf("rule %s %v is gone", r.Action, r.Names)
				}
			}
			if !slices.Equal(n.Enforced.Syscalls[0].Names, before.Syscalls[0].Names) || n.Enforced.ListenerPath != "" {
				t.Error("the enforced filter is not the one before the conversion")
			}
		})
	}
}

// TestNotifyDenialsNothingToReport: a filter that denies nothing by errno
// (a kill default, no errno rule) is left alone, and so is none.
func TestNotifyDenialsNothingToReport(t *testing.T) {
	sc := &specs.LinuxSeccomp{DefaultAction: specs.ActKillProcess, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActAllow}}}
	if n, err := NotifyDenials(sc, "/x.sock"); err != nil || n != nil || sc.ListenerPath != "" {
		t.Fatalf("notice %v, err %v, listener %q", n, err, sc.ListenerPath)
	}
	if n, err := NotifyDenials(nil, "/x.sock"); err != nil || n != nil {
		t.Fatalf("notice %v, err %v", n, err)
	}
}

// TestNotifyDenialsErrnoKept: an errno rule's own errno is the answer, and
// a rule naming write keeps write as an errno rule.
func TestNotifyDenialsErrnoKept(t *testing.T) {
	eacces := uint(syscall.EACCES)
	sc := &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"chmod", "write"}, Action: specs.ActErrno, ErrnoRet: &eacces},
		},
	}
	n, err := NotifyDenials(sc, "/x.sock")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(n.Names, []string{"chmod"}) || n.Answer("chmod") != eacces {
		t.Fatalf("names %v, chmod answered %d", n.Names, n.Answer("chmod"))
	}
	if len(sc.Syscalls) != 2 || !slices.Equal(sc.Syscalls[0].Names, []string{"write"}) || sc.Syscalls[0].Action != specs.ActErrno {
		t.Fatalf("rules %+v", sc.Syscalls)
	}
}

// TestSeccompAllow: a profile's seccomp.allow opens the syscall in the
// base filter (unshare without CAP_SYS_ADMIN), and a spec whose own filter
// denies it keeps denying it: the base only widens what the profile
// allows, never what the spec asked for.
func TestSeccompAllow(t *testing.T) {
	prof := mustProfile(t, "baseline")
	prof.Seccomp.Allow = []string{"unshare"}
	cfg := Config{Profile: prof, Runtime: "runc"}
	out, _, err := Harden(loadSpec(t, "containerd-default"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !ruleAllows(out.Linux.Seccomp, "unshare") {
		t.Fatalf("unshare is not allowed by the base with seccomp.allow: %s", mustJSON(t, out.Linux.Seccomp.Syscalls))
	}
	spec := loadSpec(t, "containerd-default")
	spec.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow,
		Syscalls: []specs.LinuxSyscall{{Names: []string{"unshare"}, Action: specs.ActErrno}}}
	out, _, err = Harden(spec, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if ruleAllows(out.Linux.Seccomp, "unshare") {
		t.Error("the spec's own denial of unshare was lifted")
	}
}

func ruleAllows(sc *specs.LinuxSeccomp, name string) bool {
	for _, r := range sc.Syscalls {
		if r.Action == specs.ActAllow && len(r.Args) == 0 && slices.Contains(r.Names, name) {
			return true
		}
	}
	return false
}
