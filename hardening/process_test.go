package hardening

import (
	"reflect"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hardened-dev/hardened/profiles"
)

func TestNoNewPrivs(t *testing.T) {
	for _, in := range []bool{false, true} {
		p := &specs.Process{NoNewPrivileges: in}
		r := &Report{}
		applyNoNewPrivs(p, r)
		if !p.NoNewPrivileges {
			t.Errorf("in=%v: noNewPrivileges still false", in)
		}
		if want := map[bool]int{false: 1, true: 0}[in]; len(r.Changes) != want {
			t.Errorf("in=%v: %d changes, want %d", in, len(r.Changes), want)
		}
	}
}

func TestRunAsNonRoot(t *testing.T) {
	tests := []struct {
		name    string
		nonRoot bool
		uid     uint32
		refused bool
	}{
		{"root allowed", false, 0, false},
		{"root refused", true, 0, true},
		{"non-root", true, 65532, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prof := &profiles.Profile{Name: "test", Process: profiles.Process{RunAsNonRoot: tt.nonRoot}}
			err := checkRunAsNonRoot(&specs.Process{User: specs.User{UID: tt.uid}}, prof)
			if !tt.refused {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if re := refusal(t, err); re.Rule != RuleProcess || re.Field != "process.user.uid" {
				t.Errorf("got %+v", re)
			}
		})
	}
}

func TestNoCoreDumps(t *testing.T) {
	core := func(soft, hard uint64) specs.POSIXRlimit {
		return specs.POSIXRlimit{Type: "RLIMIT_CORE", Soft: soft, Hard: hard}
	}
	nofile := specs.POSIXRlimit{Type: "RLIMIT_NOFILE", Soft: 1024, Hard: 1024}
	tests := []struct {
		name    string
		enabled bool
		in      []specs.POSIXRlimit
		want    []specs.POSIXRlimit
		changes int
	}{
		{"off: untouched", false, []specs.POSIXRlimit{core(1, 2)}, []specs.POSIXRlimit{core(1, 2)}, 0},
		{"added", true, nil, []specs.POSIXRlimit{core(0, 0)}, 1},
		{"added after others", true, []specs.POSIXRlimit{nofile}, []specs.POSIXRlimit{nofile, core(0, 0)}, 1},
		{"lowered", true, []specs.POSIXRlimit{nofile, core(0, ^uint64(0))}, []specs.POSIXRlimit{nofile, core(0, 0)}, 1},
		{"already zero", true, []specs.POSIXRlimit{core(0, 0)}, []specs.POSIXRlimit{core(0, 0)}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prof := &profiles.Profile{Process: profiles.Process{NoCoreDumps: tt.enabled}}
			p := &specs.Process{Rlimits: tt.in}
			r := &Report{}
			applyNoCoreDumps(p, prof, r)
			if !reflect.DeepEqual(p.Rlimits, tt.want) {
				t.Errorf("got %+v, want %+v", p.Rlimits, tt.want)
			}
			if len(r.Changes) != tt.changes {
				t.Errorf("%d changes, want %d", len(r.Changes), tt.changes)
			}
		})
	}
}
