package hardening

import (
	"reflect"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hardened-dev/hardened/profiles"
)

func TestCapabilities(t *testing.T) {
	ceiling := []string{"CAP_NET_BIND_SERVICE", "CAP_CHOWN"}
	tests := []struct {
		name    string
		ambient bool
		in      *specs.LinuxCapabilities
		limit   *specs.LinuxCapabilities // exec: the container's
		want    *specs.LinuxCapabilities
		changes int
	}{
		{
			name:    "nil becomes explicitly none",
			in:      nil,
			want:    &specs.LinuxCapabilities{},
			changes: 1,
		},
		{
			name: "within ceiling unchanged",
			in:   &specs.LinuxCapabilities{Bounding: []string{"CAP_CHOWN"}, Effective: []string{"CAP_CHOWN"}},
			want: &specs.LinuxCapabilities{Bounding: []string{"CAP_CHOWN"}, Effective: []string{"CAP_CHOWN"}},
		},
		{
			name: "every set intersected, order kept",
			in: &specs.LinuxCapabilities{
				Bounding:    []string{"CAP_SYS_ADMIN", "CAP_NET_BIND_SERVICE", "CAP_CHOWN"},
				Effective:   []string{"CAP_NET_RAW", "CAP_CHOWN"},
				Permitted:   []string{"CAP_SYS_PTRACE"},
				Inheritable: []string{"CAP_CHOWN", "CAP_KILL"},
			},
			want: &specs.LinuxCapabilities{
				Bounding:    []string{"CAP_NET_BIND_SERVICE", "CAP_CHOWN"},
				Effective:   []string{"CAP_CHOWN"},
				Inheritable: []string{"CAP_CHOWN"},
			},
			changes: 4,
		},
		{
			name:    "unknown and misspelt names dropped, duplicates folded",
			in:      &specs.LinuxCapabilities{Bounding: []string{"CAP_CHOWN", "CAP_FROBNICATE", "cap_chown", "CAP_CHOWN"}},
			want:    &specs.LinuxCapabilities{Bounding: []string{"CAP_CHOWN"}},
			changes: 1,
		},
		{
			name:    "ambient cleared",
			in:      &specs.LinuxCapabilities{Ambient: []string{"CAP_NET_BIND_SERVICE"}},
			want:    &specs.LinuxCapabilities{},
			changes: 1,
		},
		{
			name:    "ambient kept within ceiling when the profile keeps it",
			ambient: true,
			in:      &specs.LinuxCapabilities{Ambient: []string{"CAP_NET_BIND_SERVICE", "CAP_SYS_ADMIN"}},
			want:    &specs.LinuxCapabilities{Ambient: []string{"CAP_NET_BIND_SERVICE"}},
			changes: 1,
		},
		{
			name:    "never adds: empty stays empty",
			in:      &specs.LinuxCapabilities{},
			want:    &specs.LinuxCapabilities{},
			changes: 0,
		},
		{
			name:    "exec: no wider than the container, set by set",
			in:      &specs.LinuxCapabilities{Bounding: []string{"CAP_CHOWN", "CAP_NET_BIND_SERVICE"}, Effective: []string{"CAP_CHOWN", "CAP_NET_BIND_SERVICE"}},
			limit:   &specs.LinuxCapabilities{Bounding: []string{"CAP_CHOWN", "CAP_NET_BIND_SERVICE"}, Effective: []string{"CAP_NET_BIND_SERVICE"}},
			want:    &specs.LinuxCapabilities{Bounding: []string{"CAP_CHOWN", "CAP_NET_BIND_SERVICE"}, Effective: []string{"CAP_NET_BIND_SERVICE"}},
			changes: 1,
		},
		{
			name:    "exec: container with none gives none",
			in:      &specs.LinuxCapabilities{Bounding: []string{"CAP_CHOWN"}},
			limit:   &specs.LinuxCapabilities{},
			want:    &specs.LinuxCapabilities{},
			changes: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prof := &profiles.Profile{Name: "test", Capabilities: profiles.Capabilities{Allowed: ceiling, Ambient: tt.ambient}}
			p := &specs.Process{Capabilities: tt.in}
			r := &Report{}
			applyCapabilities(p, tt.limit, prof, r)
			if !reflect.DeepEqual(normCaps(p.Capabilities), normCaps(tt.want)) {
				t.Errorf("got %+v, want %+v", p.Capabilities, tt.want)
			}
			if len(r.Changes) != tt.changes {
				t.Errorf("got %d changes %+v, want %d", len(r.Changes), r.Changes, tt.changes)
			}
			if err := checkCapabilities(p.Capabilities, prof); err != nil {
				t.Errorf("output fails its own check: %v", err)
			}
		})
	}
}

// normCaps maps empty sets to nil so that DeepEqual compares contents.
func normCaps(c *specs.LinuxCapabilities) *specs.LinuxCapabilities {
	if c == nil {
		return nil
	}
	out := *c
	for _, set := range capSets {
		if p := set.get(&out); len(*p) == 0 {
			*p = nil
		}
	}
	return &out
}

func TestCheckCapabilities(t *testing.T) {
	prof := &profiles.Profile{Name: "test", Capabilities: profiles.Capabilities{Allowed: []string{"CAP_CHOWN"}}}
	for name, c := range map[string]*specs.LinuxCapabilities{
		"nil":            nil,
		"beyond ceiling": {Permitted: []string{"CAP_SYS_ADMIN"}},
		"ambient":        {Ambient: []string{"CAP_CHOWN"}},
	} {
		if err := checkCapabilities(c, prof); err == nil {
			t.Errorf("%s: accepted", name)
		} else if re := refusal(t, err); re.Rule != RuleCapabilities {
			t.Errorf("%s: rule %s", name, re.Rule)
		}
	}
}
