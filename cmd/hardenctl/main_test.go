package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

const specDir = "../../hardening/testdata/specs"

// hardenctl runs the CLI in-process and returns exit code, stdout, stderr.
func hardenctl(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(args, strings.NewReader(stdin), &out, &errOut)
	return code, out.String(), errOut.String()
}

func writeFile(t *testing.T, name, content string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestExplainDefaultPolicyHardensSpec(t *testing.T) {
	code, out, stderr := hardenctl(t, "", "explain", "--offline", "--apparmor", "no", filepath.Join(specDir, "containerd-default.json"))
	if code != 0 {
		t.Fatalf("exit %d, stderr: %s", code, stderr)
	}
	var s specs.Spec
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("stdout is not a spec: %v\n%s", err, out)
	}
	if !s.Root.Readonly {
		t.Error("hardened: rootfs not read-only")
	}
	if got := s.Process.Capabilities.Effective; len(got) != 1 || got[0] != "CAP_NET_BIND_SERVICE" {
		t.Errorf("effective caps = %v, want [CAP_NET_BIND_SERVICE]", got)
	}
	if !s.Process.NoNewPrivileges {
		t.Error("noNewPrivileges not set")
	}
	if s.Linux.Resources == nil || s.Linux.Resources.Pids == nil || s.Linux.Resources.Pids.Limit == nil || *s.Linux.Resources.Pids.Limit != 1024 {
		t.Errorf("pids limit = %+v, want 1024", s.Linux.Resources)
	}
	if s.Linux.Seccomp == nil || s.Linux.Seccomp.DefaultAction == specs.ActAllow {
		t.Errorf("no enforcing seccomp filter: %+v", s.Linux.Seccomp)
	}
	if !strings.Contains(stderr, "profile hardened (policy default_profile)") {
		t.Errorf("summary does not name the profile and its source: %q", stderr)
	}
}

func TestExplainDiffGroupsByRule(t *testing.T) {
	code, out, stderr := hardenctl(t, "", "explain", "--offline", "--sandbox-runtime", "gvisor", "--diff", "--apparmor", "no", "--profile", "strict", "--image-label", "x=y",
		filepath.Join(specDir, "cri-container.json"))
	if code != 0 {
		t.Fatalf("exit %d, stderr: %s", code, stderr)
	}
	for _, want := range []string{"[capabilities]", "[seccomp]", "[pids]", "+ 256", "[not enforced]", "apparmor"} {
		if !strings.Contains(out, want) {
			t.Errorf("diff lacks %q:\n%s", want, out)
		}
	}
}

func TestExplainReadsStdin(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(specDir, "containerd-default.json"))
	if err != nil {
		t.Fatal(err)
	}
	code, out, stderr := hardenctl(t, string(data), "explain", "--offline", "--apparmor", "no", "--profile", "baseline", "-")
	if code != 0 || !strings.Contains(out, `"noNewPrivileges": true`) {
		t.Fatalf("exit %d, stderr %s, stdout %s", code, stderr, out)
	}
}

func TestExplainRefusals(t *testing.T) {
	minimum := writeFile(t, "policy.toml", "minimum_profile = \"hardened\"\n", 0o644)
	for _, tc := range []struct {
		name string
		args []string
		want string
		code int
	}{
		{"privileged", []string{filepath.Join(specDir, "cri-privileged.json")}, "privileged containers are refused under profile hardened", exitRefused},
		{"unknown profile", []string{"--profile", "nope", filepath.Join(specDir, "minimal.json")}, `annotation hardened.dev/profile="nope"`, exitRefused},
		{"below minimum", []string{"--policy", minimum, "--annotation", "hardened.dev/profile=baseline", filepath.Join(specDir, "minimal.json")}, "below", exitRefused},
		{"strict needs non-root", []string{"--profile", "strict", filepath.Join(specDir, "containerd-default.json")}, "non-root", exitRefused},
		{"malformed spec", []string{writeFile(t, "bad.json", "{not json", 0o644)}, "malformed spec", exitInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, stderr := hardenctl(t, "", append([]string{"explain", "--offline", "--sandbox-runtime", "runc", "--apparmor", "no"}, tc.args...)...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d; stderr %s", code, tc.code, stderr)
			}
			if out != "" {
				t.Errorf("a refused spec printed output: %s", out)
			}
			if !strings.Contains(stderr, tc.want) {
				t.Errorf("stderr %q does not say %q", stderr, tc.want)
			}
		})
	}
}

// hostPolicy is a node policy whose runc is a script reporting version
// (the runc gate runs `runc --version`).
func hostPolicy(t *testing.T, version, extra string) (policy, runc string) {
	t.Helper()
	runc = writeFile(t, "runc", "#!/bin/sh\necho 'runc version "+version+"'\n", 0o755)
	return writeFile(t, "policy.toml", extra+"strict_runtime = \"runc\"\n[runtimes.runc]\npath = \""+runc+"\"\n", 0o644), runc
}

// Without --offline, explain gathers this host's facts as the shim does:
// the runc binary the policy names and the gate's verdict on it, the
// report it would write.
func TestExplainHostFacts(t *testing.T) {
	pol, runc := hostPolicy(t, "1.5.2", "")
	report := filepath.Join(t.TempDir(), "report.json")
	code, out, stderr := hardenctl(t, "", "explain", "--apparmor", "no", "--policy", pol, "--report", report, filepath.Join(specDir, "containerd-default.json"))
	if code != 0 {
		t.Fatalf("exit %d, stderr: %s", code, stderr)
	}
	var s specs.Spec
	if err := json.Unmarshal([]byte(out), &s); err != nil || !s.Root.Readonly {
		t.Fatalf("stdout is not the hardened spec (%v):\n%s", err, out)
	}
	data, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	var rep struct{ Profile, Runtime, Binary, Policy string }
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Profile != "hardened" || rep.Runtime != "runc" || rep.Binary != runc || rep.Policy != pol {
		t.Errorf("report %+v, want hardened on the policy's runc", rep)
	}

	// A runc with a known escape is refused, as the shim refuses it.
	old, _ := hostPolicy(t, "1.1.11", "")
	code, out, stderr = hardenctl(t, "", "explain", "--apparmor", "no", "--policy", old, filepath.Join(specDir, "containerd-default.json"))
	if code != exitRefused || out != "" || !strings.Contains(stderr, "CVE-2024-21626") {
		t.Errorf("vulnerable runc: exit %d, stdout %q, stderr %q; want refused naming CVE-2024-21626", code, out, stderr)
	}
}

// Host paths are opened without following symlinks and judged by their
// real paths, as the shim does before it stages them; --offline says it
// did not.
func TestExplainHostPaths(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "data"), filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	pol, _ := hostPolicy(t, "1.5.2", "allow_host_path_prefixes = [{ prefix = \""+dir+"/\", read_only = true }]\n")
	specWith := func(src string) string {
		data, err := os.ReadFile(filepath.Join(specDir, "containerd-default.json"))
		if err != nil {
			t.Fatal(err)
		}
		var s specs.Spec
		if err := json.Unmarshal(data, &s); err != nil {
			t.Fatal(err)
		}
		s.Mounts = append(s.Mounts, specs.Mount{Type: "bind", Source: src, Destination: "/data", Options: []string{"rbind", "ro"}})
		out, _ := json.Marshal(&s)
		return writeFile(t, "spec.json", string(out), 0o644)
	}
	code, out, stderr := hardenctl(t, "", "explain", "--apparmor", "no", "--policy", pol, "--namespace", "ns", "--run-dir", "/run/x", specWith(filepath.Join(dir, "data")))
	if code != 0 {
		t.Fatalf("exit %d, stderr: %s", code, stderr)
	}
	if !strings.Contains(out, "/run/x/staging/ns/example/") {
		t.Errorf("config.json does not name the source's staging path:\n%s", out)
	}
	code, _, stderr = hardenctl(t, "", "explain", "--apparmor", "no", "--policy", pol, specWith(filepath.Join(dir, "link")))
	if code != exitRefused || !strings.Contains(stderr, "symlink") || !strings.Contains(stderr, "mounts[") {
		t.Errorf("symlinked source: exit %d, stderr %q; want refused naming the mount and the symlink", code, stderr)
	}
	code, _, stderr = hardenctl(t, "", "explain", "--offline", "--apparmor", "no", "--policy", pol, specWith(filepath.Join(dir, "link")))
	if code != 0 || !strings.Contains(stderr, "offline: host paths not opened") {
		t.Errorf("offline: exit %d, stderr %q; want accepted with a note that host paths were not opened", code, stderr)
	}
}

func TestExplainAuditProfile(t *testing.T) {
	pol := writeFile(t, "policy.toml", "default_profile = \"baseline\"\naudit_profile = \"hardened\"\n", 0o644)
	code, out, stderr := hardenctl(t, "", "explain", "--offline", "--apparmor", "no", "--policy", pol, filepath.Join(specDir, "containerd-default.json"))
	var s specs.Spec
	if code != 0 || json.Unmarshal([]byte(out), &s) != nil || s.Root.Readonly {
		t.Fatalf("exit %d: want baseline's spec (writable rootfs); stderr %s", code, stderr)
	}
	if !strings.Contains(stderr, "audited profile hardened (policy audit_profile), not applied: would change") {
		t.Errorf("stderr does not report the audit: %s", stderr)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{{}, {"bogus"}, {"explain"}, {"explain", "--apparmor", "maybe", "x.json"}, {"profiles"}, {"policy", "lint", "x"}} {
		if code, _, _ := hardenctl(t, "", args...); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
}

func TestProfilesListAndShow(t *testing.T) {
	code, out, _ := hardenctl(t, "", "profiles", "list")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	iBase, iRestr, iStrict := strings.Index(out, "baseline"), strings.Index(out, "hardened"), strings.Index(out, "\nstrict")
	if iBase < 0 || iRestr < iBase || iStrict < iRestr {
		t.Errorf("profiles not listed baseline < hardened < strict:\n%s", out)
	}
	code, out, _ = hardenctl(t, "", "profiles", "show", "hardened")
	if code != 0 || !strings.Contains(out, "at most CAP_NET_BIND_SERVICE") || !strings.Contains(out, "at most 1024 tasks") ||
		!regexp.MustCompile(`restricted\s+Running as Non-root\s+not enforced`).MatchString(out) {
		t.Errorf("show hardened: exit %d\n%s", code, out)
	}
	if code, _, stderr := hardenctl(t, "", "profiles", "show", "nope"); code != exitInvalid || !strings.Contains(stderr, "nope") {
		t.Errorf("show nope: exit %d, stderr %q", code, stderr)
	}
}

func TestProfilesFromPolicyDir(t *testing.T) {
	dir := t.TempDir()
	// Stricter than strict on one dimension, as strict on the rest: it
	// ranks above strict (profiles form a chain, hardening.CheckProfileOrder).
	prof := "name = \"web\"\nextends = \"strict\"\nrank = 31\ndescription = \"strict with a smaller pids limit\"\n[pids]\nlimit = 64\n"
	if err := os.WriteFile(filepath.Join(dir, "web.toml"), []byte(prof), 0o644); err != nil {
		t.Fatal(err)
	}
	pol := writeFile(t, "policy.toml", "profiles_dir = \""+dir+"\"\n", 0o644)
	code, out, stderr := hardenctl(t, "", "profiles", "show", "--policy", pol, "web")
	if code != 0 || !strings.Contains(out, "extends strict") || !strings.Contains(out, "at most 64 tasks") {
		t.Fatalf("exit %d, stderr %s\n%s", code, stderr, out)
	}
}

func TestPolicyValidate(t *testing.T) {
	good := writeFile(t, "good.toml", "default_profile = \"strict\"\nmode = \"audit\"\n", 0o644)
	code, out, stderr := hardenctl(t, "", "policy", "validate", good)
	if code != 0 || !strings.Contains(out, "valid: mode audit, default profile strict") {
		t.Fatalf("exit %d, stderr %s, out %s", code, stderr, out)
	}
	bad := writeFile(t, "bad.toml", "mode = \"enforce\"\n\ndefault_profil = \"strict\"\n", 0o644)
	code, _, stderr = hardenctl(t, "", "policy", "validate", bad)
	if code != exitInvalid || !strings.Contains(stderr, "bad.toml:3") || !strings.Contains(stderr, "default_profil") {
		t.Fatalf("exit %d; want the unknown key with its line, stderr %q", code, stderr)
	}
}

// A runc that reports a version with a known escape makes check-host fail
// and name the CVE.
func TestCheckHostRefusesVulnerableRunc(t *testing.T) {
	runc := writeFile(t, "runc", "#!/bin/sh\necho 'runc version 1.1.11'\necho 'spec: 1.0.2-dev'\n", 0o755)
	pol := writeFile(t, "policy.toml", "strict_runtime = \"runc\"\n[runtimes.runc]\npath = \""+runc+"\"\n", 0o644)
	code, out, stderr := hardenctl(t, "", "check-host", "--policy", pol)
	if code != exitRefused {
		t.Fatalf("exit %d, want 3 (refused)\n%s%s", code, out, stderr)
	}
	if !strings.Contains(out, "CVE-2024-21626") {
		t.Errorf("check-host does not name CVE-2024-21626:\n%s", out)
	}
}

func TestVersion(t *testing.T) {
	if code, out, _ := hardenctl(t, "", "version"); code != 0 || !strings.HasPrefix(out, "hardenctl ") {
		t.Errorf("exit %d, out %q", code, out)
	}
}

// The node commands' usage errors exit 2 and say what is missing; an
// unreachable containerd is a refusal for preflight (exit 3), so the
// installer stops before it installs anything.
func TestNodeCommandUsage(t *testing.T) {
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"node"}, exitInvalid, "node takes"},
		{[]string{"node", "verify", "--handler", "hardened"}, exitInvalid, "either --image or --pod-uid"},
		{[]string{"node", "verify", "--image", "x", "--pod-uid", "u", "--handler", "hardened"}, exitInvalid, "either --image or --pod-uid"},
		{[]string{"node", "verify", "--image", "x"}, exitInvalid, "at least one --handler"},
		{[]string{"node", "label", "--node", "n"}, exitInvalid, "--version is required"},
		{[]string{"node", "unlabel", "--node", ""}, exitInvalid, "--node (or $NODE_NAME) is required"},
		{[]string{"node", "event", "--node", "n", "--type", "Info", "--reason", "R", "--message", "m"}, exitInvalid, "Normal or Warning"},
		{[]string{"node", "preflight", "--address", filepath.Join(t.TempDir(), "none.sock")}, exitRefused, "the CRI does not answer"},
	} {
		code, _, stderr := hardenctl(t, "", c.args...)
		if code != c.code || !strings.Contains(stderr, c.want) {
			t.Errorf("hardenctl %s: exit %d, stderr %q; want exit %d with %q", strings.Join(c.args, " "), code, stderr, c.code, c.want)
		}
	}
}
