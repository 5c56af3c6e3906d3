package hardening

import (
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestValidate breaks one invariant of a hardened spec at a time and
// checks Validate names it.
func TestValidate(t *testing.T) {
	cfg := cfgFor(t, "strict")
	cfg.Profile = cfg.Profile.Clone()
	good, _, err := Harden(loadSpec(t, "cri-container"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := Validate(good, cfg); err != nil {
		t.Fatalf("hardened spec fails validation: %v", err)
	}
	i64 := func(v int64) *int64 { return &v }
	tests := []struct {
		name   string
		mutate func(*specs.Spec)
		rule   string
	}{
		{"nnp off", func(s *specs.Spec) { s.Process.NoNewPrivileges = false }, RuleNoNewPrivs},
		{"nil capabilities", func(s *specs.Spec) { s.Process.Capabilities = nil }, RuleCapabilities},
		{"capability beyond the ceiling", func(s *specs.Spec) { s.Process.Capabilities.Effective = []string{"CAP_NET_RAW"} }, RuleCapabilities},
		{"ambient", func(s *specs.Spec) { s.Process.Capabilities.Ambient = []string{"CAP_CHOWN"} }, RuleCapabilities},
		{"pids unlimited", func(s *specs.Spec) { s.Linux.Resources.Pids.Limit = i64(-1) }, RulePids},
		{"pids above", func(s *specs.Spec) { s.Linux.Resources.Pids.Limit = i64(257) }, RulePids},
		{"pids removed", func(s *specs.Spec) { s.Linux.Resources = nil }, RulePids},
		{"writable rootfs", func(s *specs.Spec) { s.Root.Readonly = false }, RuleRootfs},
		{"masked path removed", func(s *specs.Spec) { s.Linux.MaskedPaths = s.Linux.MaskedPaths[1:] }, RulePaths},
		{"readonly path removed", func(s *specs.Spec) { s.Linux.ReadonlyPaths = nil }, RulePaths},
		{"seccomp removed", func(s *specs.Spec) { s.Linux.Seccomp = nil }, RuleSeccomp},
		{"seccomp weakened", func(s *specs.Spec) { s.Linux.Seccomp.DefaultAction = specs.ActLog }, RuleSeccomp},
		{"apparmor unconfined", func(s *specs.Spec) { s.Process.ApparmorProfile = "unconfined" }, RuleAppArmor},
		{"root", func(s *specs.Spec) { s.Process.User.UID = 0 }, RuleProcess},
		{"core dumps", func(s *specs.Spec) { s.Process.Rlimits = nil }, RuleRlimits},
		{"core dumps raised", func(s *specs.Spec) {
			s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_CORE", Hard: 1 << 20}}
		}, RuleRlimits},
		{"annotation", func(s *specs.Spec) { s.Annotations["dev.gvisor.flag.net-raw"] = "true" }, RuleAnnotations},
		{"hook", func(s *specs.Spec) { s.Hooks = &specs.Hooks{Poststop: []specs.Hook{{Path: "/x"}}} }, RuleHooks},
		{"cwd", func(s *specs.Spec) { s.Process.Cwd = "/proc/self/cwd" }, RuleFDHygiene},
		{"host network", func(s *specs.Spec) { s.Linux.Namespaces = s.Linux.Namespaces[:1] }, RuleNamespaces},
		{"writable sysfs", func(s *specs.Spec) {
			for i := range s.Mounts {
				if s.Mounts[i].Type == "sysfs" {
					s.Mounts[i].Options = append(s.Mounts[i].Options, "rw")
				}
			}
		}, RuleMounts},
		{"second procfs", func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/p2", Type: "proc", Source: "proc"})
		}, RuleMounts},
		{"host /proc", func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/hostproc", Type: "bind", Source: "/proc", Options: []string{"rbind"}})
		}, RuleMounts},
		{"all devices", func(s *specs.Spec) {
			s.Linux.Resources.Devices = []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}
		}, RuleDevices},
		{"a disk node", func(s *specs.Spec) { s.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/sda", Type: "b", Major: 8}} }, RuleDevices},
		{"real-time scheduling", func(s *specs.Spec) { s.Process.Scheduler = &specs.Scheduler{Policy: specs.SchedFIFO, Priority: 1} }, RuleScheduler},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := deepCopy(good)
			tt.mutate(s)
			if re := refusal(t, Validate(s, cfg)); re.Rule != tt.rule {
				t.Errorf("got %v, want rule %s", re, tt.rule)
			}
		})
	}
}
