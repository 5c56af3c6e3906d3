//go:build integration

package integration

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/hardened-dev/hardened/internal/version"
)

// TestBinariesPrintTheirVersion: each binary prints its own version and
// the versions it was tested with, the shim's -v included (containerd's
// shim code would print containerd's).
func TestBinariesPrintTheirVersion(t *testing.T) {
	requireSuite(t)
	for _, c := range []struct {
		name string
		argv []string
	}{
		{"containerd-shim-hardened-v2", []string{suite.bins.Shim, "-v"}},
		{"hardened-runsc", []string{suite.bins.Wrapper, "--version"}},
		{"hardenctl", []string{suite.bins.CLI, "version"}},
	} {
		out, err := exec.Command(c.argv[0], c.argv[1:]...).CombinedOutput()
		want := c.name + " " + version.Version + " (commit "
		if err != nil || !strings.HasPrefix(string(out), want) || !strings.Contains(string(out), "tested with containerd "+version.TestedContainerd) {
			t.Errorf("%v: %v\n%s\nwant a line starting %q", c.argv, err, out, want)
		}
	}
}
