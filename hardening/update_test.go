package hardening

import (
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestHardenUpdate(t *testing.T) {
	i64 := func(v int64) *int64 { return &v }
	mem := int64(1 << 30)
	tests := []struct {
		name    string
		in      *specs.LinuxResources
		want    *int64 // pids limit after
		unified bool   // pids.max left
		changes int
		refused bool
	}{
		{"memory only: pids untouched", &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &mem}}, nil, false, 0, false},
		{"empty pids: runc keeps the current limit", &specs.LinuxResources{Pids: &specs.LinuxPids{}}, nil, false, 0, false},
		{"unlimited lowered", &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: i64(-1)}}, i64(1024), false, 1, false},
		{"zero lowered", &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: i64(0)}}, i64(1024), false, 1, false},
		{"higher lowered", &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: i64(100000)}}, i64(1024), false, 1, false},
		{"lower kept", &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: i64(50)}}, i64(50), false, 0, false},
		{"unified max removed", &specs.LinuxResources{Unified: map[string]string{"pids.max": "max"}}, nil, false, 1, false},
		{"unified lower kept", &specs.LinuxResources{Unified: map[string]string{"pids.max": "20"}}, nil, true, 0, false},
		{"all devices", &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}}, nil, false, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := mustJSON(t, tt.in)
			out, rep, err := HardenUpdate(tt.in, cfgFor(t, "restricted"))
			if mustJSON(t, tt.in) != before {
				t.Fatal("input mutated")
			}
			if tt.refused {
				if re := refusal(t, err); re.Rule != RuleNamespaces {
					t.Errorf("got %+v", re)
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
			if _, ok := out.Unified["pids.max"]; ok != tt.unified {
				t.Errorf("unified pids.max kept=%v", ok)
			}
			if len(rep.Changes) != tt.changes {
				t.Errorf("changes %+v", rep.Changes)
			}
		})
	}
	if _, _, err := HardenUpdate(nil, cfgFor(t, "restricted")); err == nil {
		t.Error("nil update accepted")
	}
	// Baseline does not refuse privileged devices.
	if _, _, err := HardenUpdate(&specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Allow: true}}}, cfgFor(t, "baseline")); err != nil {
		t.Error(err)
	}
}
