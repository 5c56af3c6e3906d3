package hardening

import (
	"testing"

	"github.com/hardened-dev/hardened/profiles"
)

func TestAppArmor(t *testing.T) {
	tests := []struct {
		name    string
		host    bool
		mode    profiles.AppArmorMode
		runtime profiles.Runtime
		in      string
		want    string
		refused bool
		gap     string
	}{
		{"set where enforced", true, "", profiles.RuntimeRunc, "", "hardened-default", false, ""},
		{"unconfined replaced", true, profiles.AppArmorIfAvailable, profiles.RuntimeRunc, "unconfined", "hardened-default", false, ""},
		{"specific profile kept", true, profiles.AppArmorRequired, profiles.RuntimeRunc, "cri-containerd.apparmor.d", "cri-containerd.apparmor.d", false, ""},
		{"no host: if-available", false, profiles.AppArmorIfAvailable, profiles.RuntimeRunc, "", "", false, "not enforced: host has no AppArmor"},
		{"no host: default mode", false, "", profiles.RuntimeRunc, "", "", false, "not enforced: host has no AppArmor"},
		{"no host: required", false, profiles.AppArmorRequired, profiles.RuntimeRunc, "", "", true, ""},
		{"no host: off", false, profiles.AppArmorOff, profiles.RuntimeRunc, "", "", false, `not enforced: disabled by policy (apparmor = "off")`},
		{"host: off", true, profiles.AppArmorOff, profiles.RuntimeRunc, "unconfined", "unconfined", false, `not enforced: disabled by policy (apparmor = "off")`},
		{"gvisor", true, profiles.AppArmorRequired, profiles.RuntimeGVisor, "", "", false, "not enforced: gVisor ignores AppArmor"},
		{"gvisor, no host, required", false, profiles.AppArmorRequired, profiles.RuntimeGVisor, "", "", false, "not enforced: gVisor ignores AppArmor"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Config{Profile: mustProfile(t, "baseline"), Host: Host{AppArmor: tt.host}, AppArmorMode: tt.mode, Runtime: tt.runtime}
			s := baseSpec()
			s.Process.ApparmorProfile = tt.in
			out, rep, err := Harden(s, cfg)
			if tt.refused {
				if re := refusal(t, err); re.Rule != RuleAppArmor {
					t.Errorf("got %+v", re)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if out.Process.ApparmorProfile != tt.want {
				t.Errorf("profile %q, want %q", out.Process.ApparmorProfile, tt.want)
			}
			var gaps []string
			for _, g := range rep.NotEnforced {
				if g.Rule == RuleAppArmor {
					gaps = append(gaps, g.Reason)
				}
			}
			switch {
			case tt.gap == "" && len(gaps) > 0:
				t.Errorf("unexpected gaps %v", gaps)
			case tt.gap != "" && (len(gaps) != 1 || gaps[0] != tt.gap):
				t.Errorf("gaps %v, want %q", gaps, tt.gap)
			}
		})
	}
	// Validate catches an unconfined process where AppArmor is enforced.
	cfg := cfgFor(t, "baseline")
	out, _, err := Harden(baseSpec(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	out.Process.ApparmorProfile = "unconfined"
	if re := refusal(t, Validate(out, cfg)); re.Rule != RuleAppArmor {
		t.Errorf("got %+v", re)
	}
}
