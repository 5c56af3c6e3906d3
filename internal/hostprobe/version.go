package hostprobe

import (
	"cmp"
	"fmt"
	"strconv"
	"strings"
)

// Version is a runtime's semantic version as `runc --version` prints it.
type Version struct {
	Major, Minor, Patch int
	// Pre is the pre-release ("rc.1", "rc93"); a pre-release sorts before
	// its release.
	Pre string
	// Build is what follows "+" ("ds1" in Debian's "1.1.5+ds1"), or a
	// distribution's revision after a "-" that starts with a digit
	// (Ubuntu's "1.1.12-0ubuntu2~22.04.1"). It does not change ordering.
	Build string
	// Text is the version as it was written.
	Text string
}

// ParseVersion parses "1.2.3", "v1.2.3", "1.2.0-rc.1", "1.1.5+ds1",
// "1.1.12-0ubuntu2~22.04.1".
func ParseVersion(s string) (Version, error) {
	v := Version{Text: s}
	rest := strings.TrimPrefix(s, "v")
	if i := strings.IndexByte(rest, '+'); i >= 0 {
		rest, v.Build = rest[:i], rest[i+1:]
	}
	if i := strings.IndexByte(rest, '-'); i >= 0 {
		suffix := rest[i+1:]
		rest = rest[:i]
		switch {
		case suffix == "":
			return Version{}, fmt.Errorf("%w: %q", ErrBadVersion, s)
		case suffix[0] >= '0' && suffix[0] <= '9':
			// A distribution revision, not a pre-release: Ubuntu's
			// 1.1.12-0ubuntu2 is 1.1.12 with Ubuntu's patches.
			v.Build = strings.TrimPrefix(v.Build+"-"+suffix, "-")
		default:
			v.Pre = suffix
		}
	}
	parts := strings.Split(rest, ".")
	if len(parts) < 2 || len(parts) > 3 {
		return Version{}, fmt.Errorf("%w: %q", ErrBadVersion, s)
	}
	nums := [3]int{}
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || p == "" || (len(p) > 1 && p[0] == '0') || p[0] == '+' {
			return Version{}, fmt.Errorf("%w: %q", ErrBadVersion, s)
		}
		nums[i] = n
	}
	v.Major, v.Minor, v.Patch = nums[0], nums[1], nums[2]
	return v, nil
}

// mustVersion is for the package's own tables.
func mustVersion(s string) Version {
	v, err := ParseVersion(s)
	if err != nil {
		panic(err)
	}
	return v
}

// String returns the version as written, or its canonical form.
func (v Version) String() string {
	if v.Text != "" {
		return v.Text
	}
	s := fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch)
	if v.Pre != "" {
		s += "-" + v.Pre
	}
	if v.Build != "" {
		s += "+" + v.Build
	}
	return s
}

// Compare returns -1, 0 or +1 as v is older than, as old as, or newer than
// o, by semantic-versioning precedence (Build is ignored).
func (v Version) Compare(o Version) int {
	if c := cmp.Or(cmp.Compare(v.Major, o.Major), cmp.Compare(v.Minor, o.Minor), cmp.Compare(v.Patch, o.Patch)); c != 0 {
		return c
	}
	switch {
	case v.Pre == o.Pre:
		return 0
	case v.Pre == "":
		return 1
	case o.Pre == "":
		return -1
	}
	a, b := strings.Split(v.Pre, "."), strings.Split(o.Pre, ".")
	for i := 0; i < len(a) && i < len(b); i++ {
		if c := comparePreID(a[i], b[i]); c != 0 {
			return c
		}
	}
	return cmp.Compare(len(a), len(b))
}

// comparePreID compares pre-release identifiers: numbers numerically and
// below words; words by their letters, then by a trailing number ("rc93"
// after "rc9").
func comparePreID(a, b string) int {
	an, aErr := strconv.Atoi(a)
	bn, bErr := strconv.Atoi(b)
	switch {
	case aErr == nil && bErr == nil:
		return cmp.Compare(an, bn)
	case aErr == nil:
		return -1
	case bErr == nil:
		return 1
	}
	aw, ad := splitDigits(a)
	bw, bd := splitDigits(b)
	if aw != bw || ad < 0 || bd < 0 {
		return cmp.Compare(a, b)
	}
	return cmp.Compare(ad, bd)
}

func splitDigits(s string) (string, int) {
	i := len(s)
	for i > 0 && s[i-1] >= '0' && s[i-1] <= '9' {
		i--
	}
	if i == len(s) {
		return s, -1
	}
	n, err := strconv.Atoi(s[i:])
	if err != nil {
		return s, -1
	}
	return s[:i], n
}

// ParseRuncVersion finds the version in `runc --version` output:
//
//	runc version 1.5.2
//	commit: v1.5.2-0-g...
//	spec: 1.3.0
//	go: go1.26.8
//	libseccomp: 2.5.4
func ParseRuncVersion(out string) (Version, error) {
	s, err := versionLine(out, "runc version ")
	if err != nil {
		return Version{}, err
	}
	return ParseVersion(s)
}

// ParseRunscVersion finds the version in `runsc --version` output
// ("runsc version release-20260105.0"); gVisor's versions are release
// names, not semantic versions.
func ParseRunscVersion(out string) (string, error) {
	return versionLine(out, "runsc version ")
}

func versionLine(out, prefix string) (string, error) {
	for line := range strings.Lines(out) {
		line = strings.TrimSpace(line)
		if rest, ok := strings.CutPrefix(line, prefix); ok {
			if f := strings.Fields(rest); len(f) > 0 {
				return f[0], nil
			}
		}
	}
	first, _, _ := strings.Cut(strings.TrimSpace(out), "\n")
	if len(first) > 80 {
		first = first[:80] + "..."
	}
	return "", fmt.Errorf("%w: no %q line in %q", ErrBadVersion, strings.TrimSpace(prefix), first)
}
