package hardening

import (
	"slices"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hardened-dev/hardened/profiles"
)

func TestPaths(t *testing.T) {
	tests := []struct {
		name         string
		extraMasked  []string
		masked, ro   []string
		wantMasked   []string
		wantReadonly []string
	}{
		{
			name:         "defaults added to nothing",
			wantMasked:   defaultMaskedPaths,
			wantReadonly: defaultReadonlyPaths,
		},
		{
			name:         "spec's own kept first, nothing removed",
			masked:       []string{"/proc/custom", "/proc/kcore"},
			ro:           []string{"/etc/ro"},
			wantMasked:   append([]string{"/proc/custom", "/proc/kcore"}, slices.DeleteFunc(slices.Clone(defaultMaskedPaths), func(p string) bool { return p == "/proc/kcore" })...),
			wantReadonly: append([]string{"/etc/ro"}, defaultReadonlyPaths...),
		},
		{
			name:         "profile extras",
			extraMasked:  []string{"/proc/sys/kernel/core_pattern"},
			wantMasked:   append(slices.Clone(defaultMaskedPaths), "/proc/sys/kernel/core_pattern"),
			wantReadonly: defaultReadonlyPaths,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prof := &profiles.Profile{Paths: profiles.Paths{Masked: tt.extraMasked}}
			l := &specs.Linux{MaskedPaths: tt.masked, ReadonlyPaths: tt.ro}
			applyPaths(l, prof, &Report{})
			if !slices.Equal(l.MaskedPaths, tt.wantMasked) {
				t.Errorf("masked\n got %v\nwant %v", l.MaskedPaths, tt.wantMasked)
			}
			if !slices.Equal(l.ReadonlyPaths, tt.wantReadonly) {
				t.Errorf("readonly\n got %v\nwant %v", l.ReadonlyPaths, tt.wantReadonly)
			}
			if err := checkPaths(l, prof); err != nil {
				t.Error(err)
			}
		})
	}
	l := &specs.Linux{MaskedPaths: slices.Clone(defaultMaskedPaths[1:]), ReadonlyPaths: defaultReadonlyPaths}
	if re := refusal(t, checkPaths(l, &profiles.Profile{})); re.Field != "linux.maskedPaths" {
		t.Errorf("got %+v", re)
	}
}
