package hostprobe

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
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

	h := Probe(context.Background(), Prober{}, "runc", "runsc")
	if h.RuncErr != nil || h.Runc.Version != "1.5.2" || h.RunscErr != nil || h.Runsc.Version != "release-20260105.0" {
		t.Errorf("runtimes: %+v", h)
	}
	if h.CgroupVersion != 1 && h.CgroupVersion != 2 {
		t.Errorf("cgroup v%d", h.CgroupVersion)
	}
	for _, f := range h.Facts() {
		t.Logf("%-16s %s", f.Name, f.Value)
	}

	// Without a runsc path, runsc is not probed; without a runc path,
	// that is the runc fact.
	if h := Probe(context.Background(), Prober{}, "", ""); h.Runsc != nil || h.RunscErr != nil || !errors.Is(h.RuncErr, ErrProbe) {
		t.Errorf("nothing configured: %+v", h)
	}
}

func TestAppArmorEnabled(t *testing.T) {
	if got, want := AppArmorEnabled(), Probe(context.Background(), Prober{}, "", "").AppArmor; got != want {
		t.Errorf("AppArmorEnabled() = %v, Probe says %v", got, want)
	}
}
