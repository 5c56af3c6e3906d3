package version

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestTestedMatchesPins: the versions a binary says it was tested with are
// the ones the tests install (install-tools.sh's defaults; hack/matrix.sh
// overrides them for its other combinations).
func TestTestedMatchesPins(t *testing.T) {
	data, err := os.ReadFile("../../hack/install-tools.sh")
	if err != nil {
		t.Fatal(err)
	}
	pin := func(name string) string {
		m := regexp.MustCompile(`(?m)^` + name + `=(\S+)`).FindStringSubmatch(string(data))
		if m == nil {
			t.Fatalf("no %s in hack/install-tools.sh", name)
		}
		return m[1]
	}
	if got := pin("DEFAULT_CONTAINERD_VERSION"); got != TestedContainerd {
		t.Errorf("containerd pinned %s, TestedContainerd %s", got, TestedContainerd)
	}
	if got := pin("DEFAULT_RUNC_VERSION"); got != TestedRunc {
		t.Errorf("runc pinned %s, TestedRunc %s", got, TestedRunc)
	}
	// v0.0.0-20260905035102-<hash>: the release of that date.
	if got := pin("DEFAULT_RUNSC_VERSION"); !strings.HasPrefix(got, "v0.0.0-"+strings.TrimPrefix(TestedRunsc, "release-")) {
		t.Errorf("runsc pinned %s, TestedRunsc %s", got, TestedRunsc)
	}
	if s := String("x"); !strings.Contains(s, "x dev (commit unknown") || !strings.Contains(s, TestedRunc) {
		t.Errorf("String: %s", s)
	}
}
