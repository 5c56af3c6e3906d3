package hardening

import (
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestHardenUpdate(t *testing.T) {
	i64 := func(v int64) *int64 { return &v }
	mem := int64(1 << 30)
	pids := func(v int64) *specs.LinuxResources {
		return &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: i64(v)}}
	}
	// hardened limits pids to 1024.
	tests := []struct {
		name    string
		in      *specs.LinuxResources
		cur     Running
		want    *int64 // pids limit after; nil: none in the update
		changes int
		refused string // rule of the refusal
	}{
		{"memory only: pids untouched", &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &mem}}, Running{}, nil, 0, ""},
		{"empty pids: runc keeps the current limit", &specs.LinuxResources{Pids: &specs.LinuxPids{}}, Running{}, nil, 0, ""},
		{"lower kept", pids(50), Running{PidsLimit: i64(1024)}, i64(50), 0, ""},
		{"equal to the profile's kept", pids(1024), Running{}, i64(1024), 0, ""},
		{"unlimited refused", pids(-1), Running{PidsLimit: i64(1024)}, nil, 0, RulePids},
		{"zero refused", pids(0), Running{}, nil, 0, RulePids},
		{"above the profile's refused", pids(100000), Running{}, nil, 0, RulePids},
		{"above the container's lower limit refused", pids(500), Running{PidsLimit: i64(100)}, nil, 0, RulePids},
		{"CRI re-send of the unhardened limit kept at the ceiling", pids(-1), Running{PidsLimit: i64(100), RequestedPidsLimit: i64(-1)}, i64(100), 1, ""},
		{"CRI re-send above the profile's", pids(5000), Running{PidsLimit: i64(1024), RequestedPidsLimit: i64(5000)}, i64(1024), 1, ""},
		{"unified pids.max refused", &specs.LinuxResources{Unified: map[string]string{"pids.max": "20"}}, Running{}, nil, 0, RulePids},
		{"unified cgroup.procs refused", &specs.LinuxResources{Unified: map[string]string{"cgroup.procs": "1"}}, Running{}, nil, 0, RuleCgroups},
		{"unified cpuset partition refused", &specs.LinuxResources{Unified: map[string]string{"cpuset.cpus.partition": "root"}}, Running{}, nil, 0, RuleCgroups},
		{"unified memory.high kept", &specs.LinuxResources{Unified: map[string]string{"memory.high": "1G"}}, Running{}, nil, 0, ""},
		{"all devices", &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}}, Running{}, nil, 0, RuleDevices},
		{"all block devices", &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Allow: true, Type: "b", Access: "rw"}}}, Running{}, nil, 0, RuleDevices},
		{"a disk", &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Allow: true, Type: "b", Major: i64(8), Minor: i64(0), Access: "r"}}}, Running{}, nil, 0, RuleDevices},
		{"deny and mknod kept", &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}, {Allow: true, Type: "c", Access: "m"}, {Allow: true, Type: "c", Major: i64(1), Minor: i64(3), Access: "rwm"}}}, Running{}, nil, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := mustJSON(t, tt.in)
			out, rep, err := HardenUpdate(tt.in, tt.cur, cfgFor(t, "hardened"))
			if mustJSON(t, tt.in) != before {
				t.Fatal("input mutated")
			}
			if tt.refused != "" {
				if re := refusal(t, err); re.Rule != tt.refused {
					t.Errorf("refused by %q, want %q: %v", re.Rule, tt.refused, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got *int64
			if out.Pids != nil {
				got = out.Pids.Limit
			}
			if (got == nil) != (tt.want == nil) || got != nil && *got != *tt.want {
				t.Errorf("limit %v, want %v", got, tt.want)
			}
			if len(rep.Changes) != tt.changes {
				t.Errorf("changes %+v, want %d", rep.Changes, tt.changes)
			}
			again, rep, err := HardenUpdate(out, tt.cur, cfgFor(t, "hardened"))
			if err != nil || len(rep.Changes) != 0 || mustJSON(t, again) != mustJSON(t, out) {
				t.Errorf("not idempotent: %v %+v", err, rep)
			}
		})
	}
	if _, _, err := HardenUpdate(nil, Running{}, cfgFor(t, "hardened")); err == nil {
		t.Error("nil update accepted")
	}
	// Baseline de-privileges a spec, but cannot rewrite an update's rules
	// (they amend a list it does not see): refused there too.
	allDevices := &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}}
	if _, _, err := HardenUpdate(allDevices, Running{}, cfgFor(t, "baseline")); refusal(t, err).Rule != RuleDevices {
		t.Errorf("baseline: %v", err)
	}
}
