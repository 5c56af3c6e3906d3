package hardening

import (
	"reflect"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestExecPinned: an exec'd process gets nothing runc would apply as root
// beyond what the container's init process has.
func TestExecPinned(t *testing.T) {
	in := loadSpec(t, "cri-container")
	in.Process.SelinuxLabel = "system_u:system_r:container_t:s0:c1,c2"
	in.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 1024, Hard: 4096}}
	container, _, err := Harden(in, cfgFor(t, "hardened"))
	if err != nil {
		t.Fatal(err)
	}
	init := container.Process // oomScoreAdj 968, uid/gid 101, additional [101]
	oom := func(v int) *int { return &v }
	tests := []struct {
		name   string
		mutate func(*specs.Process)
		check  func(*specs.Process) bool // nil: unchanged from init's
		field  string                    // refused; "" accepted
	}{
		{"as CRI sends it", func(*specs.Process) {}, nil, ""},
		{"spc_t label", func(p *specs.Process) { p.SelinuxLabel = "system_u:system_r:spc_t:s0" }, nil, ""},
		{"no label", func(p *specs.Process) { p.SelinuxLabel = "" }, nil, ""},
		{"group 0", func(p *specs.Process) { p.User.AdditionalGids = []uint32{101, 0} }, nil, "process.user.additionalGids"},
		{"primary group 0", func(p *specs.Process) { p.User.GID = 0 }, nil, "process.user.gid"},
		{"fewer groups", func(p *specs.Process) { p.User.AdditionalGids = nil }, func(p *specs.Process) bool { return len(p.User.AdditionalGids) == 0 }, ""},
		{"oom -1000", func(p *specs.Process) { p.OOMScoreAdj = oom(-1000) }, nil, ""},
		{"no oom score", func(p *specs.Process) { p.OOMScoreAdj = nil }, nil, ""},
		{"more killable", func(p *specs.Process) { p.OOMScoreAdj = oom(1000) }, func(p *specs.Process) bool { return *p.OOMScoreAdj == 1000 }, ""},
		{"nofile raised", func(p *specs.Process) {
			p.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 1 << 20, Hard: 1 << 20}}
		}, nil, ""},
		{"nofile lowered", func(p *specs.Process) { p.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 10, Hard: 5000}} },
			func(p *specs.Process) bool {
				return reflect.DeepEqual(p.Rlimits, []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 10, Hard: 4096}})
			}, ""},
		{"no rlimits: the container's", func(p *specs.Process) { p.Rlimits = nil }, nil, ""},
		{"an rlimit the container does not set", func(p *specs.Process) {
			p.Rlimits = append(p.Rlimits, specs.POSIXRlimit{Type: "RLIMIT_MEMLOCK", Soft: ^uint64(0), Hard: ^uint64(0)})
		}, nil, "process.rlimits[1]"},
		{"umask is the process's own", func(p *specs.Process) { u := uint32(0); p.User.Umask = &u }, func(p *specs.Process) bool { return p.User.Umask != nil && *p.User.Umask == 0 }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := deepCopy(loadSpec(t, "cri-container").Process) // containerd's stored, unhardened process
			p.SelinuxLabel = init.SelinuxLabel
			p.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 1024, Hard: 4096}}
			tt.mutate(p)
			out, rep, err := HardenExec(p, container, cfgFor(t, "hardened"))
			if tt.field != "" {
				if re := refusal(t, err); re.Rule != RuleExec || re.Field != tt.field {
					t.Errorf("got %+v, want %s", re, tt.field)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			check := tt.check
			if check == nil {
				check = func(p *specs.Process) bool {
					return p.SelinuxLabel == init.SelinuxLabel && *p.OOMScoreAdj == *init.OOMScoreAdj && reflect.DeepEqual(p.Rlimits, init.Rlimits) && reflect.DeepEqual(p.User, init.User)
				}
			}
			if !check(out) {
				t.Errorf("got %s", mustJSON(t, out))
			}
			for _, c := range rep.Changes {
				if c.Rule == RuleExec && !strings.HasPrefix(c.Field, "process.") {
					t.Errorf("change %+v", c)
				}
			}
			if err := validateExec(out, container, &Config{Profile: mustProfile(t, "hardened")}); err != nil {
				t.Errorf("output fails validation: %v", err)
			}
			again, rep2, err := HardenExec(out, container, cfgFor(t, "hardened"))
			if err != nil || len(rep2.Changes) != 0 || mustJSON(t, again) != mustJSON(t, out) {
				t.Errorf("not idempotent: %v %+v", err, rep2.Changes)
			}
		})
	}
	// validateExec names each pin.
	good, _, err := HardenExec(deepCopy(init), container, cfgFor(t, "hardened"))
	if err != nil {
		t.Fatal(err)
	}
	for name, mutate := range map[string]func(*specs.Process){
		"label":   func(p *specs.Process) { p.SelinuxLabel = "x" },
		"oom":     func(p *specs.Process) { p.OOMScoreAdj = oom(-1) },
		"no oom":  func(p *specs.Process) { p.OOMScoreAdj = nil },
		"rlimit":  func(p *specs.Process) { p.Rlimits[0].Hard++ },
		"missing": func(p *specs.Process) { p.Rlimits = nil },
		"group":   func(p *specs.Process) { p.User.AdditionalGids = []uint32{4} },
	} {
		p := deepCopy(good)
		mutate(p)
		if re := refusal(t, validateExec(p, container, &Config{Profile: mustProfile(t, "hardened")})); re.Rule != RuleExec {
			t.Errorf("%s: %+v", name, re)
		}
	}
}
