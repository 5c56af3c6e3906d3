package hardening

import (
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hardened-dev/hardened/profiles"
)

func TestPids(t *testing.T) {
	i64 := func(v int64) *int64 { return &v }
	tests := []struct {
		name  string
		prof  int64
		res   *specs.LinuxResources
		want  *int64
		count int
	}{
		{"no resources", 1024, nil, i64(1024), 1},
		{"no pids", 1024, &specs.LinuxResources{}, i64(1024), 1},
		{"nil limit", 1024, &specs.LinuxResources{Pids: &specs.LinuxPids{}}, i64(1024), 1},
		{"zero is unlimited", 1024, &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: i64(0)}}, i64(1024), 1},
		{"negative is unlimited", 1024, &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: i64(-1)}}, i64(1024), 1},
		{"higher lowered", 1024, &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: i64(4096)}}, i64(1024), 1},
		{"lower kept", 1024, &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: i64(10)}}, i64(10), 0},
		{"equal kept", 1024, &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: i64(1024)}}, i64(1024), 0},
		{"profile without limit", 0, &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: i64(-1)}}, i64(-1), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prof := &profiles.Profile{Name: "test", Pids: profiles.Pids{Limit: tt.prof}}
			l := &specs.Linux{Resources: tt.res}
			r := &Report{}
			applyPids(l, prof, r)
			var got *int64
			if l.Resources != nil && l.Resources.Pids != nil {
				got = l.Resources.Pids.Limit
			}
			if got == nil || *got != *tt.want {
				t.Errorf("limit %v, want %d", got, *tt.want)
			}
			if len(r.Changes) != tt.count {
				t.Errorf("%d changes, want %d", len(r.Changes), tt.count)
			}
			if err := checkPids(l, prof); err != nil {
				t.Error(err)
			}
		})
	}
	prof := &profiles.Profile{Name: "test", Pids: profiles.Pids{Limit: 100}}
	for name, l := range map[string]*specs.Linux{
		"nil linux": nil,
		"no limit":  {},
		"higher":    {Resources: &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: i64(101)}}},
		"unlimited": {Resources: &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: i64(0)}}},
	} {
		if re := refusal(t, checkPids(l, prof)); re.Rule != RulePids {
			t.Errorf("%s: %+v", name, re)
		}
	}
}

func TestPidsUnified(t *testing.T) {
	prof := &profiles.Profile{Name: "test", Pids: profiles.Pids{Limit: 100}}
	tests := []struct {
		value string
		kept  bool
	}{
		{"max", false}, {"101", false}, {"-1", false}, {" 50", false}, {"lots", false},
		{"100", true}, {"7", true}, {"0", true},
	}
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) {
			l := &specs.Linux{Resources: &specs.LinuxResources{Unified: map[string]string{"pids.max": tt.value, "memory.max": "max"}}}
			if tt.kept != (checkPids(&specs.Linux{Resources: &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: &prof.Pids.Limit}, Unified: l.Resources.Unified}}, prof) == nil) {
				t.Errorf("checkPids disagrees")
			}
			applyPids(l, prof, &Report{})
			_, ok := l.Resources.Unified["pids.max"]
			if ok != tt.kept {
				t.Errorf("kept=%v, want %v", ok, tt.kept)
			}
			if l.Resources.Unified["memory.max"] != "max" {
				t.Error("other unified entries touched")
			}
			if err := checkPids(l, prof); err != nil {
				t.Error(err)
			}
		})
	}
}
