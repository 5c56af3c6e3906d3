package cri

// critest's expected-deviations file and JUnit report: no build tag, so
// that the unit tests below check the committed file on every `go test`.

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	toml "github.com/pelletier/go-toml/v2"
)

// deviationsFile lists the specs expected to fail under the hardened
// handler, each with the hardening rule that makes it fail.
const deviationsFile = "critest-deviations.toml"

const ruleLimitation = "LIMITATION"

// deviation is one expected failure. Every one must be a tightening: the
// spec asks for something the policy does not grant (a writable rootfs,
// host namespaces, privileges, unconfined seccomp, an added capability...).
type deviation struct {
	Spec   string `toml:"spec"`
	Rule   string `toml:"rule"`
	Reason string `toml:"reason"`
}

// limitation is a failure that is not a tightening (a gap in what the
// hardened runtime supports). Listed so that CI stays usable while it is
// open; printed loudly on every run.
type limitation struct {
	Spec   string `toml:"spec"`
	Reason string `toml:"reason"`
}

// offline is a spec that cannot run without the internet: it needs
// something no locally built image can be (an upstream image pinned by its
// digest). TestCritest skips it under every handler (--ginkgo.skip) and
// says so on every run; it is neither a pass nor a deviation.
type offline struct {
	Spec   string `toml:"spec"`
	Reason string `toml:"reason"`
}

type deviations struct {
	Deviation  []deviation  `toml:"deviation"`
	Limitation []limitation `toml:"limitation"`
	Offline    []offline    `toml:"offline"`
}

func decodeDeviations(path string) (deviations, error) {
	var d deviations
	data, err := os.ReadFile(path)
	if err != nil {
		return d, err
	}
	dec := toml.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		return d, fmt.Errorf("%s: %w", path, err)
	}
	return d, nil
}

// loadOffline reads the file's [[offline]] entries. A spec may not be
// both offline and a deviation or limitation.
func loadOffline(path string) ([]offline, error) {
	d, err := decodeDeviations(path)
	if err != nil {
		return nil, err
	}
	listed := map[string]bool{}
	for _, dv := range d.Deviation {
		listed[dv.Spec] = true
	}
	for _, l := range d.Limitation {
		listed[l.Spec] = true
	}
	for i, o := range d.Offline {
		switch {
		case o.Spec == "" || o.Reason == "":
			return nil, fmt.Errorf("%s: offline #%d needs spec and reason", path, i+1)
		case listed[o.Spec]:
			return nil, fmt.Errorf("%s: spec listed twice: %s", path, o.Spec)
		}
		listed[o.Spec] = true
	}
	return d.Offline, nil
}

// offlineSkip is the --ginkgo.skip pattern for the offline specs: their
// text quoted, without the " [Serial]" the report appends to a serial
// spec's name (Ginkgo matches the pattern against the spec's text, which
// does not carry its decorators). "" when there are none.
func offlineSkip(specs []offline) string {
	var alts []string
	for _, o := range specs {
		text := strings.TrimPrefix(strings.TrimSuffix(o.Spec, " [Serial]"), "[k8s.io] ")
		alts = append(alts, regexp.QuoteMeta(text))
	}
	return strings.Join(alts, "|")
}

// loadDeviations reads the file; limitations come back as deviations with
// Rule "LIMITATION".
func loadDeviations(path string) (map[string]deviation, error) {
	d, err := decodeDeviations(path)
	if err != nil {
		return nil, err
	}
	out := map[string]deviation{}
	for i, dv := range d.Deviation {
		switch {
		case dv.Spec == "" || dv.Rule == "" || dv.Reason == "":
			return nil, fmt.Errorf("%s: deviation #%d needs spec, rule and reason", path, i+1)
		case out[dv.Spec].Spec != "":
			return nil, fmt.Errorf("%s: spec listed twice: %s", path, dv.Spec)
		}
		out[dv.Spec] = dv
	}
	for i, l := range d.Limitation {
		switch {
		case l.Spec == "" || l.Reason == "":
			return nil, fmt.Errorf("%s: limitation #%d needs spec and reason", path, i+1)
		case out[l.Spec].Spec != "":
			return nil, fmt.Errorf("%s: spec listed twice: %s", path, l.Spec)
		}
		out[l.Spec] = deviation{Spec: l.Spec, Rule: ruleLimitation, Reason: l.Reason}
	}
	return out, nil
}

// JUnit report of Ginkgo v2 (--ginkgo.junit-report).
type junitReport struct {
	Suites []struct {
		Cases []junitCase `xml:"testcase"`
	} `xml:"testsuite"`
}

type junitCase struct {
	Name    string `xml:"name,attr"`
	Status  string `xml:"status,attr"`
	Time    string `xml:"time,attr"`
	Failure *struct {
		Message string `xml:"message,attr"`
		Text    string `xml:",chardata"`
	} `xml:"failure"`
	Skipped *struct {
		Message string `xml:"message,attr"`
	} `xml:"skipped"`
}

// specResult is one spec's outcome.
type specResult struct {
	Name    string
	Status  string // passed, failed, skipped, pending, panicked, timedout, interrupted
	Seconds float64
	Message string
}

func (r specResult) failed() bool {
	switch r.Status {
	case "passed", "skipped", "pending":
		return false
	}
	return true
}

// parseJUnit returns the specs of a report by name ("[k8s.io] Security
// Context ..."), and the suite-level failures (BeforeSuite...).
func parseJUnit(path string) (specs map[string]specResult, suite []specResult, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	var rep junitReport
	if err := xml.Unmarshal(data, &rep); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	specs = map[string]specResult{}
	for _, s := range rep.Suites {
		for _, c := range s.Cases {
			r := specResult{Status: c.Status}
			r.Seconds, _ = strconv.ParseFloat(c.Time, 64)
			if c.Failure != nil {
				r.Message = c.Failure.Message
				if r.Message == "" {
					r.Message = c.Failure.Text
				}
			}
			if c.Skipped != nil {
				r.Message = c.Skipped.Message
			}
			name, isSpec := strings.CutPrefix(c.Name, "[It] ")
			r.Name = name
			if !isSpec {
				if r.failed() {
					suite = append(suite, r)
				}
				continue
			}
			if r.Status == "skipped" && r.Message == "skipped" {
				// Not selected by --ginkgo.focus (a spec that calls
				// Skip() says why instead).
				continue
			}
			specs[name] = r
		}
	}
	return specs, suite, nil
}

// junitNames returns the name of every spec in a report, run or not.
func junitNames(path string) (map[string]bool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var rep junitReport
	if err := xml.Unmarshal(data, &rep); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	out := map[string]bool{}
	for _, s := range rep.Suites {
		for _, c := range s.Cases {
			if name, ok := strings.CutPrefix(c.Name, "[It] "); ok {
				out[name] = true
			}
		}
	}
	return out, nil
}

// TestDeviationsFile: the committed file parses strictly, every entry has
// what it needs, and every tightening names an engine rule.
func TestDeviationsFile(t *testing.T) {
	devs, err := loadDeviations(deviationsFile)
	if err != nil {
		t.Fatal(err)
	}
	rules := map[string]bool{"namespaces": true, "capabilities": true, "nonewprivs": true, "rootfs": true,
		"seccomp": true, "pids": true, "paths": true, "process": true, "exec": true, "mounts": true, "sysctls": true, ruleLimitation: true}
	for name, d := range devs {
		if !strings.HasPrefix(name, "[k8s.io] ") {
			t.Errorf("%q: spec names start with \"[k8s.io] \" in critest's report", name)
		}
		if !rules[d.Rule] {
			t.Errorf("%q: rule %q is not an engine rule", name, d.Rule)
		}
	}
	off, err := loadOffline(deviationsFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range off {
		if !strings.HasPrefix(o.Spec, "[k8s.io] ") {
			t.Errorf("offline %q: spec names start with \"[k8s.io] \" in critest's report", o.Spec)
		}
		if _, err := regexp.Compile(offlineSkip([]offline{o})); err != nil {
			t.Errorf("offline %q: %v", o.Spec, err)
		}
	}
	t.Logf("%d entries, %d offline", len(devs), len(off))
}

func TestOfflineSkip(t *testing.T) {
	spec := "[k8s.io] Image Manager public image with digest should be pulled and removed [Conformance] [Serial]"
	re := regexp.MustCompile(offlineSkip([]offline{{Spec: spec, Reason: "r"}}))
	// What Ginkgo matches: the suite description, then the spec's text.
	text := "CRI validation [k8s.io] Image Manager public image with digest should be pulled and removed [Conformance]"
	if !re.MatchString(text) {
		t.Errorf("%s does not match %q", re, text)
	}
	for _, other := range []string{
		"CRI validation [k8s.io] Image Manager public image with tag should be pulled and removed [Conformance]",
		"CRI validation [k8s.io] Image Manager public image with digest should be pulled",
	} {
		if re.MatchString(other) {
			t.Errorf("%s matches %q", re, other)
		}
	}
	if offlineSkip(nil) != "" {
		t.Error("no offline spec: no pattern")
	}
}

func TestParseJUnit(t *testing.T) {
	specs, suite, err := parseJUnit("testdata/junit-sample.xml")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"[k8s.io] Security Context bucket runtime should support RunAsUser":                      "passed",
		"[k8s.io] Security Context bucket runtime should support Privileged is true":             "failed",
		"[k8s.io] Security Context UserNamespaces runtime should fail with NamespaceMode_TARGET": "skipped",
	}
	if len(specs) != len(want) {
		t.Errorf("got %d specs, want %d (focus-filtered specs are dropped): %v", len(specs), len(want), specs)
	}
	for n, st := range want {
		if specs[n].Status != st {
			t.Errorf("%s: status %q, want %q", n, specs[n].Status, st)
		}
	}
	if m := specs["[k8s.io] Security Context bucket runtime should support Privileged is true"].Message; !strings.Contains(m, "refused") {
		t.Errorf("failure message %q", m)
	}
	if len(suite) != 1 || suite[0].Name != "[BeforeSuite]" {
		t.Errorf("suite failures: %+v", suite)
	}
	// junitNames has every spec, the ones the focus left out too (how an
	// [[offline]] spec is found in the report), and no suite node.
	names, err := junitNames("testdata/junit-sample.xml")
	if err != nil {
		t.Fatal(err)
	}
	filtered := "[k8s.io] Image Manager listImage should get exactly 3 image in the result list [Conformance] [Serial]"
	if len(names) != len(want)+1 || !names[filtered] || names["[BeforeSuite]"] {
		t.Errorf("junitNames: %v", names)
	}
	for n := range want {
		if !names[n] {
			t.Errorf("junitNames: %q missing", n)
		}
	}
}
