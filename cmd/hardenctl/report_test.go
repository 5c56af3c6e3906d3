package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/hardened-dev/hardened/hardening"
	"github.com/hardened-dev/hardened/internal/decide"
	"github.com/hardened-dev/hardened/internal/reports"
)

func TestReport(t *testing.T) {
	dir := t.TempDir()
	kept := &decide.Report{ContainerID: "web", Profile: "hardened", ProfileSource: "policy default_profile", Runtime: "runc",
		Mode: "enforce", Policy: "built-in default", Changes: []hardening.Change{
			{Rule: "capabilities", Field: "process.capabilities.effective", Before: "CAP_SYS_ADMIN", After: "CAP_NET_BIND_SERVICE"},
			{Rule: "process", Field: "process.env", Before: "TOKEN=secret", After: ""},
		}}
	if err := reports.Keep(dir, "k8s.io", kept); err != nil {
		t.Fatal(err)
	}
	if err := reports.Keep(dir, "default", &decide.Report{ContainerID: "bad", Mode: "enforce", Refused: "hardened: container bad: refused by hardening policy: profile: x"}); err != nil {
		t.Fatal(err)
	}
	code, out, stderr := hardenctl(t, "", "report", "--dir", dir, "web")
	if code != 0 || !strings.Contains(out, "k8s.io/web") || !strings.Contains(out, "hardened (policy default_profile)") ||
		!strings.Contains(out, "process.capabilities.effective") || strings.Contains(out, "secret") {
		t.Errorf("table: exit %d, stderr %q\n%s", code, stderr, out)
	}
	code, out, _ = hardenctl(t, "", "report", "--dir", dir, "-o", "json", "--namespace", "k8s.io", "web")
	var got decide.Report
	if code != 0 || json.Unmarshal([]byte(out), &got) != nil || got.Profile != "hardened" || len(got.Changes) != 2 {
		t.Errorf("json: exit %d\n%s", code, out)
	}
	if code, out, _ = hardenctl(t, "", "report", "--dir", dir, "bad"); code != 0 || !strings.Contains(out, "refused by hardening policy") {
		t.Errorf("refused: exit %d\n%s", code, out)
	}
	if code, _, stderr = hardenctl(t, "", "report", "--dir", dir, "nope"); code != 1 || !strings.Contains(stderr, "no kept report") {
		t.Errorf("missing: exit %d, %q", code, stderr)
	}
}
