package hostprobe

import (
	"errors"
	"testing"
)

func TestCheckRunc(t *testing.T) {
	const (
		all2025 = "CVE-2025-31133, CVE-2025-52565, CVE-2025-52881"
		all     = "CVE-2024-21626, " + all2025
	)
	for _, tc := range []struct {
		version string
		want    string // "" = accepted
	}{
		{"1.0.0-rc93", "runc 1.0.0-rc93 has known container escapes (" + all + "): upgrade to runc 1.2.8 or later"},
		{"1.1.11", "runc 1.1.11 has known container escapes (" + all + "): upgrade to runc 1.2.8 or later"},
		{"1.1.5+ds1", "runc 1.1.5+ds1 has known container escapes (" + all + "): upgrade to runc 1.2.8 or later"},
		// 1.1.12 fixed CVE-2024-21626, but the 1.1 line never got the 2025 fixes.
		{"1.1.12", "runc 1.1.12 has known container escapes (" + all2025 + "): upgrade to runc 1.2.8 or later"},
		{"1.1.15", "runc 1.1.15 has known container escapes (" + all2025 + "): upgrade to runc 1.2.8 or later"},
		{"1.2.0-rc.1", "runc 1.2.0-rc.1 has known container escapes (" + all2025 + "): upgrade to runc 1.2.8 or later"},
		{"1.2.7", "runc 1.2.7 has known container escapes (" + all2025 + "): upgrade to runc 1.2.8 or later"},
		{"1.2.8-rc.1", "runc 1.2.8-rc.1 has known container escapes (" + all2025 + "): upgrade to runc 1.2.8 or later"},
		{"1.2.8", ""},
		{"1.2.9", ""},
		{"1.3.0-rc.1", "runc 1.3.0-rc.1 has known container escapes (" + all2025 + "): upgrade to runc 1.3.3 or later"},
		{"1.3.0", "runc 1.3.0 has known container escapes (" + all2025 + "): upgrade to runc 1.3.3 or later"},
		{"1.3.2", "runc 1.3.2 has known container escapes (" + all2025 + "): upgrade to runc 1.3.3 or later"},
		{"1.3.3", ""},
		{"1.4.0-rc.1", "runc 1.4.0-rc.1 has known container escapes (" + all2025 + "): upgrade to runc 1.4.0-rc.3 or later"},
		{"1.4.0-rc.3", ""},
		{"1.4.0", ""},
		{"1.5.2", ""},
		{"2.0.0", ""},
	} {
		err := CheckRunc(mustVersion(tc.version))
		if tc.want == "" {
			if err != nil {
				t.Errorf("%s refused: %v", tc.version, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%s accepted", tc.version)
			continue
		}
		if err.Error() != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.version, err, tc.want)
		}
		var ve *VulnerableError
		if !errors.Is(err, ErrVulnerableRuntime) || !errors.As(err, &ve) || ve.Version.String() != tc.version {
			t.Errorf("%s: error %#v", tc.version, err)
		}
	}
}

// TestAdvisoryTable: every span parses and is not empty.
func TestAdvisoryTable(t *testing.T) {
	for _, a := range runcAdvisories {
		for _, s := range a.spans {
			fixed := mustVersion(s.fixed)
			if s.introduced != "" && mustVersion(s.introduced).Compare(fixed) >= 0 {
				t.Errorf("%s: empty span %v", a.cve, s)
			}
		}
	}
}
