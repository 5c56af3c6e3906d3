package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hardened-dev/hardened/hardening"
	"github.com/hardened-dev/hardened/internal/decide"
	"github.com/hardened-dev/hardened/internal/reports"
	"github.com/hardened-dev/hardened/profiles"
)

func writeFilter(t *testing.T, path string, sc *specs.LinuxSeccomp) string {
	t.Helper()
	data, _ := json.Marshal(sc)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestSeccompMergeDiff: two recordings of one filter merge into the union
// of what each workload needed; diff shows it against the base; a
// recording of another filter does not merge.
func TestSeccompMergeDiff(t *testing.T) {
	dir := t.TempDir()
	base := &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Architectures: []specs.Arch{specs.ArchX86_64},
		Syscalls: []specs.LinuxSyscall{{Names: []string{"read", "write"}, Action: specs.ActAllow}}}
	b := writeFilter(t, filepath.Join(dir, "base.json"), base)
	r1 := writeFilter(t, filepath.Join(dir, "r1.json"), hardening.AllowNames(base, []string{"unshare"}))
	r2 := writeFilter(t, filepath.Join(dir, "r2.json"), hardening.AllowNames(base, []string{"mount"}))
	other := writeFilter(t, filepath.Join(dir, "other.json"), &specs.LinuxSeccomp{DefaultAction: specs.ActAllow})
	merged := filepath.Join(dir, "merged.json")
	if code, _, stderr := hardenctl(t, "", "seccomp", "merge", "-o", merged, r1, r2); code != 0 {
		t.Fatalf("merge: exit %d: %s", code, stderr)
	}
	code, out, _ := hardenctl(t, "", "seccomp", "diff", b, merged)
	if code != 0 || out != "+ mount\n+ unshare\n" {
		t.Errorf("diff: exit %d\n%s", code, out)
	}
	if code, _, stderr := hardenctl(t, "", "seccomp", "merge", r1, other); code != exitInvalid || !strings.Contains(stderr, "not a recording of the same filter") {
		t.Errorf("merge of another filter: exit %d: %s", code, stderr)
	}
}

// TestSeccompInstall: the syscalls learn mode let run in two containers
// become a profile extending baseline with seccomp.allow, ranked below it,
// which loads; a container not recorded in learn mode is refused.
func TestSeccompInstall(t *testing.T) {
	rdir, pdir := t.TempDir(), t.TempDir()
	for id, names := range map[string][]string{"web-1": {"unshare"}, "web-2": {"unshare", "mount"}} {
		r := &decide.Report{ContainerID: id, Mode: "enforce", Seccomp: &decide.SeccompReport{Mode: "learn"}}
		for _, n := range names {
			r.Seccomp.Denials = append(r.Seccomp.Denials, decide.Denial{Syscall: n, Answer: "allowed", Count: 1})
		}
		if err := reports.Keep(rdir, "k8s.io", r); err != nil {
			t.Fatal(err)
		}
	}
	if err := reports.Keep(rdir, "k8s.io", &decide.Report{ContainerID: "plain", Mode: "enforce"}); err != nil {
		t.Fatal(err)
	}
	code, out, stderr := hardenctl(t, "", "seccomp", "install", "--name", "web", "--extends", "baseline",
		"--profiles-dir", pdir, "--dir", rdir, "web-1", "web-2")
	if code != 0 {
		t.Fatalf("install: exit %d: %s", code, stderr)
	}
	t.Log(out)
	set, err := hardening.LoadProfiles(pdir)
	if err != nil {
		t.Fatal(err)
	}
	p, err := set.Get("web")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(p.Seccomp.Allow, ",") != "mount,unshare" || p.Rank != 9 || p.Seccomp.Base != profiles.SeccompBaseDefault {
		t.Errorf("installed profile: allow %v, rank %d, base %q", p.Seccomp.Allow, p.Rank, p.Seccomp.Base)
	}
	code, _, stderr = hardenctl(t, "", "seccomp", "install", "--name", "plain", "--extends", "baseline",
		"--profiles-dir", pdir, "--dir", rdir, "plain")
	if code != exitInvalid || !strings.Contains(stderr, "not recorded in learn mode") {
		t.Errorf("install from a container not in learn mode: exit %d: %s", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(pdir, "plain.toml")); err == nil {
		t.Error("a profile was written for it")
	}
}
