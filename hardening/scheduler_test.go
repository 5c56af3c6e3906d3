package hardening

import (
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestScheduling(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*specs.Process)
		field  string // refused under hardened (no CAP_SYS_NICE, no CAP_SYS_ADMIN); "" accepted
	}{
		{"none", func(*specs.Process) {}, ""},
		{"nice -20 (the evidence)", func(p *specs.Process) { p.Scheduler = &specs.Scheduler{Policy: specs.SchedOther, Nice: -20} }, "process.scheduler.nice"},
		{"nice -1 with batch", func(p *specs.Process) { p.Scheduler = &specs.Scheduler{Policy: specs.SchedBatch, Nice: -1} }, "process.scheduler.nice"},
		{"nice 10", func(p *specs.Process) { p.Scheduler = &specs.Scheduler{Policy: specs.SchedOther, Nice: 10} }, ""},
		{"idle", func(p *specs.Process) { p.Scheduler = &specs.Scheduler{Policy: specs.SchedIdle} }, ""},
		{"fifo", func(p *specs.Process) { p.Scheduler = &specs.Scheduler{Policy: specs.SchedFIFO, Priority: 99} }, "process.scheduler.policy"},
		{"rr", func(p *specs.Process) { p.Scheduler = &specs.Scheduler{Policy: specs.SchedRR, Priority: 1} }, "process.scheduler.policy"},
		{"deadline", func(p *specs.Process) {
			p.Scheduler = &specs.Scheduler{Policy: specs.SchedDeadline, Runtime: 1e6, Deadline: 1e6, Period: 1e6}
		}, "process.scheduler.policy"},
		{"realtime I/O (the evidence)", func(p *specs.Process) {
			p.IOPriority = &specs.LinuxIOPriority{Class: specs.IOPRIO_CLASS_RT, Priority: 0}
		}, "process.ioPriority.class"},
		{"best-effort I/O", func(p *specs.Process) {
			p.IOPriority = &specs.LinuxIOPriority{Class: specs.IOPRIO_CLASS_BE, Priority: 0}
		}, ""},
		{"idle I/O", func(p *specs.Process) { p.IOPriority = &specs.LinuxIOPriority{Class: specs.IOPRIO_CLASS_IDLE} }, ""},
		{"RLIMIT_RTPRIO", func(p *specs.Process) { p.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_RTPRIO", Hard: 99}} }, "process.rlimits[0]"},
		{"RLIMIT_RTPRIO 0", func(p *specs.Process) { p.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_RTPRIO"}} }, ""},
		{"RLIMIT_NICE 40", func(p *specs.Process) {
			p.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 10, Hard: 10}, {Type: "RLIMIT_NICE", Soft: 40, Hard: 40}}
		}, "process.rlimits[1]"},
		{"RLIMIT_NICE 20 (nice 0 at best)", func(p *specs.Process) { p.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NICE", Soft: 20, Hard: 20}} }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := criSpec()
			tt.mutate(s.Process)
			_, _, err := Harden(s, cfgFor(t, "hardened"))
			if tt.field == "" {
				if err != nil {
					t.Fatal(err)
				}
			} else if re := refusal(t, err); re.Rule != RuleScheduler || re.Field != tt.field {
				t.Errorf("got %+v, want %s", re, tt.field)
			}
			// The same process exec'd is refused the same way.
			container, _, err := Harden(criSpec(), cfgFor(t, "hardened"))
			if err != nil {
				t.Fatal(err)
			}
			p := deepCopy(s.Process)
			p.Rlimits = append(p.Rlimits, container.Process.Rlimits...)
			container.Process.Rlimits = p.Rlimits // the container allows them: the capabilities decide
			_, _, err = HardenExec(p, container, cfgFor(t, "hardened"))
			if tt.field == "" {
				if err != nil {
					t.Fatalf("exec: %v", err)
				}
			} else if re := refusal(t, err); re.Rule != RuleScheduler {
				t.Errorf("exec: got %+v", re)
			}
		})
	}
	// With the capability, the profile (data) decides: a profile that
	// allows CAP_SYS_NICE and CAP_SYS_ADMIN lets all of them through.
	cfg := cfgFor(t, "baseline")
	cfg.Profile = cfg.Profile.Clone()
	cfg.Profile.Capabilities.Allowed = append(cfg.Profile.Capabilities.Allowed, capSysNice, capSysAdmin)
	s := criSpec()
	caps := []string{capSysNice, capSysAdmin}
	s.Process.Capabilities = &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps}
	s.Process.Scheduler = &specs.Scheduler{Policy: specs.SchedFIFO, Priority: 10}
	s.Process.IOPriority = &specs.LinuxIOPriority{Class: specs.IOPRIO_CLASS_RT}
	s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_RTPRIO", Soft: 10, Hard: 10}}
	if _, _, err := Harden(s, cfg); err != nil {
		t.Errorf("with the capabilities: %v", err)
	}
	// ... and a capability the profile drops is not there to allow it.
	if _, _, err := Harden(s, cfgFor(t, "baseline")); err == nil || !strings.Contains(err.Error(), capSysNice) {
		t.Errorf("baseline drops CAP_SYS_NICE: %v", err)
	}
}
