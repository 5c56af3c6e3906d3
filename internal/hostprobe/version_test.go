package hostprobe

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseVersion(t *testing.T) {
	for _, tc := range []struct {
		in                  string
		major, minor, patch int
		pre, build          string
		bad                 bool
	}{
		{in: "1.5.2", major: 1, minor: 5, patch: 2},
		{in: "v1.1.12", major: 1, minor: 1, patch: 12},
		{in: "1.2", major: 1, minor: 2},
		{in: "1.2.0-rc.1", major: 1, minor: 2, pre: "rc.1"},
		{in: "1.0.0-rc93", major: 1, pre: "rc93"},
		{in: "1.1.5+ds1", major: 1, minor: 1, patch: 5, build: "ds1"},
		{in: "1.1.12-0ubuntu2~22.04.1", major: 1, minor: 1, patch: 12, build: "0ubuntu2~22.04.1"},
		{in: "1.2.0-rc.1+dev", major: 1, minor: 2, pre: "rc.1", build: "dev"},
		{in: "", bad: true},
		{in: "1", bad: true},
		{in: "1.2.3.4", bad: true},
		{in: "1.x.3", bad: true},
		{in: "01.2.3", bad: true},
		{in: "1..3", bad: true},
		{in: "1.2.3-", bad: true},
		{in: "-1.2.3", bad: true},
		{in: "release-20260105.0", bad: true},
		{in: "99999999999999999999.0.0", bad: true},
	} {
		v, err := ParseVersion(tc.in)
		if tc.bad {
			if err == nil || !errors.Is(err, ErrBadVersion) {
				t.Errorf("ParseVersion(%q) = %+v, %v; want ErrBadVersion", tc.in, v, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseVersion(%q): %v", tc.in, err)
			continue
		}
		if v.Major != tc.major || v.Minor != tc.minor || v.Patch != tc.patch || v.Pre != tc.pre || v.Build != tc.build {
			t.Errorf("ParseVersion(%q) = %+v", tc.in, v)
		}
		if v.String() != tc.in {
			t.Errorf("String() = %q, want %q", v.String(), tc.in)
		}
	}
	if got := (Version{Major: 1, Minor: 2, Patch: 0, Pre: "rc.1", Build: "x"}).String(); got != "1.2.0-rc.1+x" {
		t.Errorf("canonical String() = %q", got)
	}
}

func TestCompare(t *testing.T) {
	// Each is older than the next.
	order := []string{
		"1.0.0-rc9", "1.0.0-rc10", "1.0.0-rc93", "1.0.0",
		"1.1.11", "1.1.12", "1.1.12+ds1", "1.1.15",
		"1.2.0-alpha", "1.2.0-rc.1", "1.2.0-rc.2", "1.2.0-rc.2.1", "1.2.0-rc.10", "1.2.0",
		"1.2.7", "1.2.8", "1.3.0-rc.1", "1.3.2", "1.3.3", "1.4.0-rc.2", "1.4.0-rc.3", "1.4.0", "1.5.2", "2.0.0",
	}
	for i := range order {
		for j := range order {
			a, b := mustVersion(order[i]), mustVersion(order[j])
			want := 0
			switch {
			case i < j:
				want = -1
			case i > j:
				want = 1
			}
			// 1.1.12 and 1.1.12+ds1 are the same version.
			if strings.TrimSuffix(order[i], "+ds1") == strings.TrimSuffix(order[j], "+ds1") {
				want = 0
			}
			if got := a.Compare(b); got != want {
				t.Errorf("%s vs %s = %d, want %d", order[i], order[j], got, want)
			}
		}
	}
	if mustVersion("1.1.12-0ubuntu2").Compare(mustVersion("1.1.12")) != 0 {
		t.Error("a distribution revision changed ordering")
	}
}

func TestParseRuncVersion(t *testing.T) {
	for file, want := range map[string]string{
		"runc-1.5.2.txt":  "1.5.2",
		"runc-debian.txt": "1.1.5+ds1",
		"runc-ubuntu.txt": "1.1.12-0ubuntu2~22.04.1",
		"runc-rc.txt":     "1.2.0-rc.1",
		"runc-old.txt":    "1.0.0-rc93",
	} {
		data, err := os.ReadFile(filepath.Join("testdata", file))
		if err != nil {
			t.Fatal(err)
		}
		v, err := ParseRuncVersion(string(data))
		if err != nil || v.String() != want {
			t.Errorf("%s: %v, %v; want %s", file, v, err, want)
		}
	}
	for _, bad := range []string{
		"", "runc version\n", "runc 1.2.3\n", "crun version 1.14\n", "runc version banana\n",
		"runsc version release-20260105.0\n",
	} {
		if v, err := ParseRuncVersion(bad); !errors.Is(err, ErrBadVersion) {
			t.Errorf("ParseRuncVersion(%q) = %v, %v", bad, v, err)
		}
	}
	_, err := ParseRuncVersion("Usage: runc [options]\nfoo\n")
	if want := `unrecognised version: no "runc version" line in "Usage: runc [options]"`; err == nil || err.Error() != want {
		t.Errorf("message %q, want %q", err, want)
	}
}

func TestParseRunscVersion(t *testing.T) {
	for file, want := range map[string]string{
		"runsc.txt":        "release-20260105.0",
		"runsc-source.txt": "VERSION_MISSING",
	} {
		data, err := os.ReadFile(filepath.Join("testdata", file))
		if err != nil {
			t.Fatal(err)
		}
		if v, err := ParseRunscVersion(string(data)); err != nil || v != want {
			t.Errorf("%s: %q, %v; want %s", file, v, err, want)
		}
	}
	if _, err := ParseRunscVersion("runc version 1.5.2\n"); !errors.Is(err, ErrBadVersion) {
		t.Errorf("runc output accepted as runsc's: %v", err)
	}
}

func FuzzParseRuncVersion(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*.txt")
	for _, s := range seeds {
		data, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(data))
	}
	ref := mustVersion("1.2.8")
	f.Fuzz(func(t *testing.T, out string) {
		v, err := ParseRuncVersion(out)
		if err != nil {
			if !errors.Is(err, ErrBadVersion) {
				t.Fatalf("error does not wrap ErrBadVersion: %v", err)
			}
			return
		}
		again, err := ParseVersion(v.String())
		if err != nil || again.Compare(v) != 0 {
			t.Fatalf("%q does not round-trip: %+v, %v", v.String(), again, err)
		}
		if v.Compare(ref) != -ref.Compare(v) {
			t.Fatalf("Compare is not antisymmetric for %q", v.String())
		}
		if err := CheckRunc(v); err != nil && !errors.Is(err, ErrVulnerableRuntime) {
			t.Fatalf("CheckRunc: %v", err)
		}
		ParseRunscVersion(out)
	})
}
