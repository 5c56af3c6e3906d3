package seccompagent

import (
	"slices"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hardened-dev/hardened/hardening"
	"github.com/hardened-dev/hardened/internal/decide"
)

func TestRecordAggregatesAndBounds(t *testing.T) {
	r := newRecord()
	t0 := time.Unix(1000, 0)
	if !r.needsExe("unshare") {
		t.Fatal("the first unshare needs its executable")
	}
	r.add(decide.Denial{Syscall: "unshare", Arch: "amd64", Answer: "EPERM", Executable: "/bin/sh"}, t0)
	r.add(decide.Denial{Syscall: "unshare", Arch: "amd64", Answer: "EPERM"}, t0.Add(time.Second))
	r.add(decide.Denial{Syscall: "mount", Arch: "amd64", Answer: "EPERM"}, t0)
	if r.needsExe("unshare") {
		t.Error("a second unshare looks its executable up again")
	}
	ds, dropped, seq := r.Snapshot()
	if seq != 3 || dropped != 0 || len(ds) != 2 {
		t.Fatalf("seq %d dropped %d denials %+v", seq, dropped, ds)
	}
	if u := ds[0]; u.Syscall != "unshare" || u.Count != 2 || !u.First.Equal(t0) || !u.Last.Equal(t0.Add(time.Second)) || u.Executable != "/bin/sh" {
		t.Errorf("unshare (most frequent first): %+v", u)
	}
	if got := Summary(ds); got != "unshare×2 (EPERM), mount×1 (EPERM)" {
		t.Errorf("summary %q", got)
	}
	// An answer the kernel refused is taken back; the last one removes
	// the entry.
	r.add(decide.Denial{Syscall: "ptrace", Arch: "amd64", Answer: "EPERM"}, t0)
	r.retract("amd64", "ptrace")
	r.retract("amd64", "unshare")
	ds, _, _ = r.Snapshot()
	if len(ds) != 2 || ds[0].Syscall != "mount" || ds[1].Syscall != "unshare" || ds[1].Count != 1 {
		t.Errorf("after retracting ptrace and one unshare: %+v", ds)
	}
	for i := range maxDenials + 10 {
		r.add(decide.Denial{Syscall: "s", Arch: string(rune('a' + i%26)), Number: int32(i)}, t0)
		r.add(decide.Denial{Syscall: "n" + string(rune(i)), Arch: "amd64"}, t0)
	}
	ds, dropped, _ = r.Snapshot()
	if len(ds) != maxDenials || dropped == 0 {
		t.Errorf("%d denials kept, %d dropped: want the bound %d and the rest counted", len(ds), dropped, maxDenials)
	}
}

// TestLearned: the learned profile is the enforced filter with the denied
// syscalls allowed: taken out of their errno rule and added to an allow
// rule; a syscall the listener never saw (a kill rule's) is not added.
func TestLearned(t *testing.T) {
	eperm := uint(syscall.EPERM)
	enforced := &specs.LinuxSeccomp{
		DefaultAction: specs.ActErrno,
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"read", "write"}, Action: specs.ActAllow},
			{Names: []string{"io_uring_setup", "bpf"}, Action: specs.ActErrno, ErrnoRet: &eperm},
			{Names: []string{"kexec_load"}, Action: specs.ActKillProcess},
		},
	}
	sc := hardening.CloneSeccomp(enforced)
	n, err := hardening.NotifyDenials(sc, "/x.sock")
	if err != nil {
		t.Fatal(err)
	}
	got := Learned(n, []decide.Denial{{Syscall: "bpf"}, {Syscall: "unshare"}, {Syscall: "kexec_load"}})
	if got.ListenerPath != "" || got.DefaultAction != specs.ActErrno {
		t.Fatalf("learned %+v", got)
	}
	want := []specs.LinuxSyscall{
		{Names: []string{"read", "write"}, Action: specs.ActAllow},
		{Names: []string{"io_uring_setup"}, Action: specs.ActErrno, ErrnoRet: &eperm},
		{Names: []string{"kexec_load"}, Action: specs.ActKillProcess},
		{Names: []string{"bpf", "unshare"}, Action: specs.ActAllow},
	}
	if len(got.Syscalls) != len(want) {
		t.Fatalf("rules %+v", got.Syscalls)
	}
	for i := range want {
		if !slices.Equal(got.Syscalls[i].Names, want[i].Names) || got.Syscalls[i].Action != want[i].Action {
			t.Errorf("rule %d: %+v, want %+v", i, got.Syscalls[i], want[i])
		}
	}
	if !slices.Equal(enforced.Syscalls[1].Names, n.Enforced.Syscalls[1].Names) {
		t.Error("Learned changed the notice's enforced filter")
	}
}
