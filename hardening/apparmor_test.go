package hardening

import "testing"

func TestAppArmor(t *testing.T) {
	tests := []struct {
		name    string
		host    bool
		mode    string
		backend string
		in      string
		want    string
		refused bool
		gap     string
	}{
		{"set where enforced", true, "", BackendRunc, "", "hardened-default", false, ""},
		{"unconfined replaced", true, AppArmorIfAvailable, BackendRunc, "unconfined", "hardened-default", false, ""},
		{"specific profile kept", true, AppArmorRequired, BackendRunc, "cri-containerd.apparmor.d", "cri-containerd.apparmor.d", false, ""},
		{"no host: if-available", false, AppArmorIfAvailable, BackendRunc, "", "", false, "not enforced: host has no AppArmor"},
		{"no host: default mode", false, "", BackendRunc, "", "", false, "not enforced: host has no AppArmor"},
		{"no host: required", false, AppArmorRequired, BackendRunc, "", "", true, ""},
		{"no host: off", false, AppArmorOff, BackendRunc, "", "", false, `not enforced: disabled by policy (apparmor = "off")`},
		{"host: off", true, AppArmorOff, BackendRunc, "unconfined", "unconfined", false, `not enforced: disabled by policy (apparmor = "off")`},
		{"gvisor", true, AppArmorRequired, BackendGVisor, "", "", false, "not enforced: gVisor ignores AppArmor"},
		{"gvisor, no host, required", false, AppArmorRequired, BackendGVisor, "", "", false, "not enforced: gVisor ignores AppArmor"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Config{Profile: mustProfile(t, "baseline"), Host: Host{AppArmor: tt.host}, AppArmorMode: tt.mode, Backend: tt.backend}
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
