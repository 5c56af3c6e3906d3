package main

import (
	"fmt"
	"slices"
	"testing"

	"github.com/hardened-dev/hardened/internal/hostprobe"
	"github.com/hardened-dev/hardened/internal/policy"
)

func TestHostProblems(t *testing.T) {
	good := func() *hostprobe.Host {
		return &hostprobe.Host{
			Seccomp: true, AppArmor: true, CgroupVersion: 2, PidsController: true,
			Runc:  &hostprobe.RuntimeInfo{Path: "/usr/bin/runc", Version: "1.5.2"},
			Runsc: &hostprobe.RuntimeInfo{Path: "/usr/bin/runsc", Version: "release-20260105.0"},
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
	vuln := hostprobe.CheckRunc(hostprobe.Version{Major: 1, Minor: 1, Patch: 11})
	noRunsc := fmt.Errorf("%w: exec: \"runsc\": executable file not found in $PATH", hostprobe.ErrProbe)

	for _, tc := range []struct {
		name string
		p    *policy.Policy
		edit func(h *hostprobe.Host)
		want []string
	}{
		{name: "all good", p: policy.Default(), edit: func(*hostprobe.Host) {}},
		{
			name: "vulnerable runc", p: policy.Default(),
			edit: func(h *hostprobe.Host) { h.RuncErr = vuln },
			want: []string{"runc: runc 1.1.11 has known container escapes (CVE-2024-21626, CVE-2025-31133, CVE-2025-52565, CVE-2025-52881): upgrade to runc 1.2.8 or later"},
		},
		{
			name: "nothing works", p: routed,
			edit: func(h *hostprobe.Host) {
				*h = hostprobe.Host{CgroupVersion: 1, RuncErr: fmt.Errorf("%w: exec: \"runc\": executable file not found in $PATH", hostprobe.ErrProbe), RunscErr: noRunsc}
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
			edit: func(h *hostprobe.Host) { h.AppArmor = false },
		},
		{
			name: "runsc missing, default policy (strict_runtime gvisor)", p: policy.Default(),
			edit: func(h *hostprobe.Host) { h.Runsc, h.RunscErr = nil, noRunsc },
			want: []string{`runsc: failed to probe runtime: exec: "runsc": executable file not found in $PATH (the policy sends workloads to gvisor: strict_runtime)`},
		},
		{
			name: "runsc missing, runc-only policy", p: runcOnly,
			edit: func(h *hostprobe.Host) { h.Runsc, h.RunscErr = nil, nil },
		},
		{
			name: "runsc missing, gvisor configured but unused", p: unusedGVisor,
			edit: func(h *hostprobe.Host) { h.Runsc, h.RunscErr = nil, noRunsc },
		},
		{
			name: "runsc not probed", p: routed,
			edit: func(h *hostprobe.Host) { h.Runsc = nil },
			want: []string{"runsc was not probed (the policy sends workloads to gvisor: route #1)"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := good()
			tc.edit(h)
			if got := hostProblems(h, tc.p); !slices.Equal(got, tc.want) {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}
