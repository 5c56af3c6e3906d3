package hostprobe

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/hardened-dev/hardened/internal/policy"
)

// fakeHost builds a /proc and /sys tree under a temp dir.
func fakeHost(t *testing.T, files map[string]string, dirs ...string) string {
	t.Helper()
	root := t.TempDir()
	for name, body := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range dirs {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func magic(m int64) func(string) (int64, error) {
	return func(string) (int64, error) { return m, nil }
}

func TestFacts(t *testing.T) {
	const status = "Name:\tcat\nSeccomp:\t0\nSeccomp_filters:\t0\n"
	const actions = "kill_process kill_thread trap errno user_notif trace log allow\n"
	for _, tc := range []struct {
		name    string
		files   map[string]string
		dirs    []string
		magic   int64
		seccomp bool
		aa      bool
		cgroup  int
		pids    bool
	}{
		{
			name: "v1 host without apparmor (this CI machine)",
			files: map[string]string{
				"proc/self/status":                      status,
				"proc/sys/kernel/seccomp/actions_avail": actions,
			},
			dirs:    []string{"sys/fs/cgroup/pids"},
			magic:   unix.TMPFS_MAGIC,
			seccomp: true, cgroup: 1, pids: true,
		},
		{
			name: "v2 host with apparmor",
			files: map[string]string{
				"proc/self/status":                       status,
				"proc/sys/kernel/seccomp/actions_avail":  actions,
				"sys/module/apparmor/parameters/enabled": "Y\n",
				"sys/fs/cgroup/cgroup.controllers":       "cpuset cpu io memory hugetlb pids rdma misc\n",
			},
			dirs:    []string{"sys/kernel/security/apparmor"},
			magic:   unix.CGROUP2_SUPER_MAGIC,
			seccomp: true, aa: true, cgroup: 2, pids: true,
		},
		{
			name: "v2 without pids, apparmor module off, old kernel without actions_avail",
			files: map[string]string{
				"proc/self/status":                       status,
				"sys/module/apparmor/parameters/enabled": "N\n",
				"sys/fs/cgroup/cgroup.controllers":       "cpu memory pidsx\n",
			},
			dirs:   []string{"sys/kernel/security/apparmor", "sys/fs/cgroup/pids"},
			magic:  unix.CGROUP2_SUPER_MAGIC,
			cgroup: 2,
		},
		{
			name: "no seccomp field, apparmor enabled but no securityfs",
			files: map[string]string{
				"proc/self/status":                       "Name:\tcat\n",
				"proc/sys/kernel/seccomp/actions_avail":  actions,
				"sys/module/apparmor/parameters/enabled": "Y\n",
			},
			magic:  unix.TMPFS_MAGIC,
			cgroup: 1,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := fakeHost(t, tc.files, tc.dirs...)
			h := prober{root: root, statfs: magic(tc.magic)}.facts()
			if h.Seccomp != tc.seccomp || h.AppArmor != tc.aa || h.CgroupVersion != tc.cgroup || h.PidsController != tc.pids {
				t.Errorf("got %+v", h)
			}
			if tc.seccomp && !slices.Contains(h.SeccompActions, "kill_process") {
				t.Errorf("actions %v", h.SeccompActions)
			}
			if !strings.HasPrefix(h.Libseccomp, "2.") {
				t.Errorf("libseccomp %q", h.Libseccomp)
			}
		})
	}
	// statfs failing: v1, as runc would see it.
	h := prober{root: t.TempDir(), statfs: func(string) (int64, error) { return 0, errors.New("no") }}.facts()
	if h.CgroupVersion != 1 || h.Seccomp || h.AppArmor || h.PidsController {
		t.Errorf("empty host: %+v", h)
	}
}

func TestProblems(t *testing.T) {
	good := func() *Host {
		return &Host{
			Seccomp: true, AppArmor: true, CgroupVersion: 2, PidsController: true,
			Runc:  &RuntimeInfo{Path: "/usr/bin/runc", Version: "1.5.2"},
			Runsc: &RuntimeInfo{Path: "/usr/bin/runsc", Version: "release-20260105.0"},
		}
	}
	runcOnly, err := policy.Parse([]byte("strict_runtime = \"runc\"\n[runtimes.runc]\npath = \"runc\"\n"), "p.toml")
	if err != nil {
		t.Fatal(err)
	}
	routed, err := policy.Parse([]byte("apparmor = \"required\"\nstrict_runtime = \"runc\"\n"+
		"[runtimes.runc]\npath = \"runc\"\n[runtimes.gvisor]\npath = \"runsc\"\n"+
		"[[routes]]\nmatch = { labels = { a = \"b\" } }\nruntime = \"gvisor\"\n"), "p.toml")
	if err != nil {
		t.Fatal(err)
	}
	unusedGVisor, err := policy.Parse([]byte("strict_runtime = \"runc\"\n"), "p.toml")
	if err != nil {
		t.Fatal(err)
	}
	vuln := CheckRunc(mustVersion("1.1.11"))
	noRunsc := fmt.Errorf("%w: exec: \"runsc\": executable file not found in $PATH", ErrProbe)

	for _, tc := range []struct {
		name string
		p    *policy.Policy
		edit func(h *Host)
		want []string
	}{
		{name: "all good", p: nil, edit: func(*Host) {}},
		{
			name: "vulnerable runc", p: policy.Default(),
			edit: func(h *Host) { h.RuncErr = vuln },
			want: []string{"runc: runc 1.1.11 has known container escapes (CVE-2024-21626, CVE-2025-31133, CVE-2025-52565, CVE-2025-52881): upgrade to runc 1.2.8 or later"},
		},
		{
			name: "nothing works", p: routed,
			edit: func(h *Host) {
				*h = Host{CgroupVersion: 1, RuncErr: fmt.Errorf("%w: exec: \"runc\": executable file not found in $PATH", ErrProbe), RunscErr: noRunsc}
			},
			want: []string{
				`runc: failed to probe runtime: exec: "runc": executable file not found in $PATH`,
				"the kernel has no seccomp filter support: no syscall filter can be enforced",
				`policy apparmor = "required", but AppArmor is not enabled on this host: every container will be refused`,
				"no pids cgroup controller (cgroup v1): pids limits cannot be enforced",
				`runsc: failed to probe runtime: exec: "runsc": executable file not found in $PATH (the policy sends workloads to gvisor: route #1)`,
			},
		},
		{
			name: "apparmor absent but only if-available", p: policy.Default(),
			edit: func(h *Host) { h.AppArmor = false },
		},
		{
			name: "runsc missing, default policy (strict_runtime gvisor)", p: policy.Default(),
			edit: func(h *Host) { h.Runsc, h.RunscErr = nil, noRunsc },
			want: []string{`runsc: failed to probe runtime: exec: "runsc": executable file not found in $PATH (the policy sends workloads to gvisor: strict_runtime)`},
		},
		{
			name: "runsc missing, runc-only policy", p: runcOnly,
			edit: func(h *Host) { h.Runsc, h.RunscErr = nil, nil },
		},
		{
			name: "runsc missing, gvisor configured but unused", p: unusedGVisor,
			edit: func(h *Host) { h.Runsc, h.RunscErr = nil, noRunsc },
		},
		{
			name: "runsc not probed", p: routed,
			edit: func(h *Host) { h.Runsc = nil },
			want: []string{"runsc was not probed (the policy sends workloads to gvisor: route #1)"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := good()
			tc.edit(h)
			if got := h.Problems(tc.p); !slices.Equal(got, tc.want) {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestFactsRows(t *testing.T) {
	h := &Host{
		Seccomp: true, SeccompActions: []string{"kill_process", "errno"}, Libseccomp: "2.5.4",
		CgroupVersion: 1, PidsController: true,
		Runc:    &RuntimeInfo{Path: "/usr/bin/runc", Version: "1.1.11"},
		RuncErr: CheckRunc(mustVersion("1.1.11")),
	}
	got := h.Facts()
	want := []Fact{
		{"seccomp", "yes (kill_process errno)"},
		{"libseccomp", "2.5.4"},
		{"apparmor", "no"},
		{"cgroup", "v1"},
		{"pids controller", "yes"},
		{"runc", "1.1.11 (/usr/bin/runc): runc 1.1.11 has known container escapes (CVE-2024-21626, CVE-2025-31133, CVE-2025-52565, CVE-2025-52881): upgrade to runc 1.2.8 or later"},
		{"runsc", "not configured"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	h.Runc, h.RuncErr = nil, errors.New("boom")
	if got := h.Facts()[5].Value; got != "error: boom" {
		t.Errorf("runc row %q", got)
	}
}

// TestProbeThisHost runs the real probe with fake runtimes on PATH.
func TestProbeThisHost(t *testing.T) {
	dir := t.TempDir()
	fakeRunc(t, filepath.Join(dir, "runc"), filepath.Join(dir, "count"), "1.5.2")
	writeScript(t, filepath.Join(dir, "runsc"), "#!/bin/sh\necho 'runsc version release-20260105.0'\n")
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))

	h := Probe(context.Background(), nil)
	if h.RuncErr != nil || h.Runc.Version != "1.5.2" || h.RunscErr != nil || h.Runsc.Version != "release-20260105.0" {
		t.Errorf("runtimes: %+v", h)
	}
	if h.CgroupVersion != 1 && h.CgroupVersion != 2 {
		t.Errorf("cgroup v%d", h.CgroupVersion)
	}
	for _, f := range h.Facts() {
		t.Logf("%-16s %s", f.Name, f.Value)
	}
	for _, p := range h.Problems(nil) {
		t.Logf("problem: %s", p)
	}

	// A policy without gvisor does not probe runsc.
	p, err := policy.Parse([]byte("strict_runtime = \"runc\"\n[runtimes.runc]\npath = \"runc\"\n"), "p.toml")
	if err != nil {
		t.Fatal(err)
	}
	if h := Probe(context.Background(), p); h.Runsc != nil || h.RunscErr != nil {
		t.Errorf("runsc probed: %+v", h)
	}
}

func TestAppArmorEnabled(t *testing.T) {
	if got, want := AppArmorEnabled(), Probe(context.Background(), nil).AppArmor; got != want {
		t.Errorf("AppArmorEnabled() = %v, Probe says %v", got, want)
	}
}
