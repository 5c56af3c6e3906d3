package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"sigs.k8s.io/yaml"

	"github.com/hardened-dev/hardened/internal/decide"
	"github.com/hardened-dev/hardened/internal/reports"
	"github.com/hardened-dev/hardened/profiles"
)

// TestHelpEverywhere: --help on every command exits 0 and names every one
// of its flags.
func TestHelpEverywhere(t *testing.T) {
	var walk func(c *cobra.Command, path []string)
	walk = func(c *cobra.Command, path []string) {
		code, out, stderr := hardenctl(t, "", append(path, "--help")...)
		if code != 0 {
			t.Errorf("%v --help: exit %d: %s", path, code, stderr)
		}
		c.Flags().VisitAll(func(f *pflag.Flag) {
			if !strings.Contains(out, "--"+f.Name) {
				t.Errorf("%v --help does not show --%s:\n%s", path, f.Name, out)
			}
		})
		for _, sub := range c.Commands() {
			if sub.Name() != "help" {
				walk(sub, append(append([]string{}, path...), sub.Name()))
			}
		}
	}
	walk(newRoot(nil, nil, nil), nil)
}

// TestFlagsAnywhere: flags may follow the arguments.
func TestFlagsAnywhere(t *testing.T) {
	code, out, stderr := hardenctl(t, "", "explain", filepath.Join(specDir, "containerd-default.json"), "--offline", "--apparmor", "no", "--profile", "baseline")
	if code != 0 || !strings.Contains(out, `"noNewPrivileges": true`) {
		t.Fatalf("exit %d, stderr %s", code, stderr)
	}
}

// TestOutputFormatsRoundTrip: -o json and -o yaml decode back into what
// the table shows.
func TestOutputFormatsRoundTrip(t *testing.T) {
	for _, format := range []string{"json", "yaml"} {
		code, out, stderr := hardenctl(t, "", "profiles", "show", "hardened", "-o", format)
		var p struct {
			profiles.Profile
			PodSecurity []profiles.PSAControl `json:"podSecurity"`
		}
		if code != 0 || yaml.Unmarshal([]byte(out), &p) != nil || p.Name != "hardened" || p.Pids.Limit != 1024 || len(p.PodSecurity) == 0 {
			t.Errorf("profiles show -o %s: exit %d %s\n%s", format, code, stderr, out)
		}
		code, out, _ = hardenctl(t, "", "profiles", "list", "-o", format)
		var all []profiles.Profile
		if code != 0 || yaml.Unmarshal([]byte(out), &all) != nil || len(all) != 4 {
			t.Errorf("profiles list -o %s: exit %d\n%s", format, code, out)
		}
		code, out, _ = hardenctl(t, "", "explain", "--offline", "--apparmor", "no", "-o", format, filepath.Join(specDir, "containerd-default.json"))
		var plan struct {
			Report decide.Report `json:"report"`
		}
		if code != 0 || yaml.Unmarshal([]byte(out), &plan) != nil || plan.Report.Profile != "hardened" || len(plan.Report.Changes) == 0 {
			t.Errorf("explain -o %s: exit %d\n%s", format, code, out)
		}
	}
	dir := t.TempDir()
	if err := reports.Keep(dir, "default", &decide.Report{ContainerID: "web", Profile: "baseline", Mode: "enforce"}); err != nil {
		t.Fatal(err)
	}
	code, out, _ := hardenctl(t, "", "report", "web", "--dir", dir, "-o", "yaml")
	var r decide.Report
	if code != 0 || yaml.Unmarshal([]byte(out), &r) != nil || r.Profile != "baseline" {
		t.Errorf("report -o yaml: exit %d\n%s", code, out)
	}
	if code, _, _ := hardenctl(t, "", "report", "web", "--dir", dir, "-o", "xml"); code != exitInvalid {
		t.Errorf("-o xml: exit %d, want 2", code)
	}
	code, out, _ = hardenctl(t, "", "policy", "validate", writeFile(t, "p.toml", "default_profile = \"baseline\"\n", 0o644), "-o", "json")
	var pol map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &pol) != nil || pol["default_profile"] != "baseline" {
		t.Errorf("policy validate -o json: exit %d\n%s", code, out)
	}
}

// TestExitCodes: refused 3, invalid input 2 (a key differing only in case
// included), internal 1.
func TestExitCodes(t *testing.T) {
	bad := writeFile(t, "p.toml", "Default_Profile = \"baseline\"\n", 0o644)
	if code, _, stderr := hardenctl(t, "", "policy", "validate", bad); code != exitInvalid || !strings.Contains(stderr, "did you mean default_profile") {
		t.Errorf("a key in another case: exit %d: %s", code, stderr)
	}
	if code, _, _ := hardenctl(t, "", "explain", "--offline", "--apparmor", "no", "--profile", "nope", filepath.Join(specDir, "minimal.json")); code != exitRefused {
		t.Errorf("a refused spec: exit %d, want 3", code)
	}
	if code, _, _ := hardenctl(t, "", "explain", "--offline", "/nonexistent/spec.json"); code != exitInternal {
		t.Errorf("an unreadable spec: exit %d, want 1", code)
	}
	code, out, _ := hardenctl(t, "", "completion", "bash")
	if code != 0 || !strings.Contains(out, "hardenctl") {
		t.Errorf("completion bash: exit %d", code)
	}
}
