package policy

import (
	"os/exec"
	"strings"
	"testing"
)

// Parsing a policy links neither the engine nor containerd: the policy
// package (and hostprobe, which reports host facts) sit below them.
func TestDependenciesPointOneWay(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is not in PATH: %v", err)
	}
	for pkg, banned := range map[string][]string{
		".":              {"github.com/hardened-dev/hardened/hardening", "github.com/hardened-dev/hardened/internal/decide", "github.com/containerd/"},
		"../hostprobe":   {"github.com/hardened-dev/hardened/internal/policy", "github.com/hardened-dev/hardened/hardening", "github.com/containerd/"},
		"../../profiles": {"github.com/hardened-dev/hardened/internal/policy", "github.com/hardened-dev/hardened/hardening", "github.com/containerd/"},
	} {
		out, err := exec.Command(gobin, "list", "-deps", pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps %s: %v\n%s", pkg, err, out)
		}
		for _, dep := range strings.Fields(string(out)) {
			for _, b := range banned {
				if strings.HasPrefix(dep, b) {
					t.Errorf("%s depends on %s", pkg, dep)
				}
			}
		}
	}
}
