package hostprobe

import (
	"fmt"
	"slices"
	"strings"
)

// runcAdvisories lists runc's container escapes, one CVE a line, each with
// the version spans it affects: [introduced, fixed), "" introduced meaning
// "every earlier version". The shim refuses a runc in any span.
//
//   - CVE-2024-21626 ("Leaky Vessels"): a host fd leaked into the container
//     let process.cwd = /proc/self/fd/N resolve into the host filesystem.
//     Fixed in 1.1.12.
//   - CVE-2025-31133, CVE-2025-52565, CVE-2025-52881 (November 2025): mount
//     races on maskedPaths, /dev/console and /proc writes let a container
//     write host procfs files. Fixed in 1.2.8, 1.3.3 and 1.4.0-rc.3; the
//     1.1 series (end of life) never got the fix, so every version below
//     1.2.8 is affected.
var runcAdvisories = []struct {
	cve   string
	spans []span
}{
	{"CVE-2024-21626", []span{{"", "1.1.12"}}},
	{"CVE-2025-31133", []span{{"", "1.2.8"}, {"1.3.0-rc.1", "1.3.3"}, {"1.4.0-rc.1", "1.4.0-rc.3"}}},
	{"CVE-2025-52565", []span{{"", "1.2.8"}, {"1.3.0-rc.1", "1.3.3"}, {"1.4.0-rc.1", "1.4.0-rc.3"}}},
	{"CVE-2025-52881", []span{{"", "1.2.8"}, {"1.3.0-rc.1", "1.3.3"}, {"1.4.0-rc.1", "1.4.0-rc.3"}}},
}

type span struct{ introduced, fixed string }

// VulnerableError says which known escapes a runtime version has and which
// version fixes them all. It wraps ErrVulnerableRuntime.
type VulnerableError struct {
	Version Version
	CVEs    []string
	// Upgrade is the lowest version that fixes every one of CVEs on the
	// same release line (the next line's for end-of-life lines).
	Upgrade Version
}

func (e *VulnerableError) Error() string {
	return fmt.Sprintf("runc %s has known container escapes (%s): upgrade to runc %s or later",
		e.Version, strings.Join(e.CVEs, ", "), e.Upgrade)
}

// Unwrap returns ErrVulnerableRuntime.
func (e *VulnerableError) Unwrap() error { return ErrVulnerableRuntime }

// CheckRunc returns nil if no advisory covers v, else a *VulnerableError.
//
// The check is by version: a distribution that backports a fix without
// changing the upstream version (Ubuntu's 1.1.7-0ubuntu1~22.04.2 carries
// the CVE-2024-21626 fix) is refused too. Fail closed: upgrade runc.
func CheckRunc(v Version) error {
	var e VulnerableError
	for _, a := range runcAdvisories {
		for _, s := range a.spans {
			fixed := mustVersion(s.fixed)
			if s.introduced != "" && v.Compare(mustVersion(s.introduced)) < 0 {
				continue
			}
			if v.Compare(fixed) >= 0 {
				continue
			}
			if !slices.Contains(e.CVEs, a.cve) {
				e.CVEs = append(e.CVEs, a.cve)
			}
			if fixed.Compare(e.Upgrade) > 0 {
				e.Upgrade = fixed
			}
		}
	}
	if len(e.CVEs) == 0 {
		return nil
	}
	e.Version = v
	return &e
}
