package cri

// Unit test (no build tag, no root): the node policies shipped in deploy/
// parse under the product's own policy parser and name existing profiles.
// The Kubernetes manifests themselves are checked in the deploy module
// (cd deploy && go test ./...), which may use the Kubernetes API types.

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/hardened-dev/hardened/internal/policy"
	"github.com/hardened-dev/hardened/profiles"
)

func TestDeployPoliciesParse(t *testing.T) {
	for _, name := range []string{"policy.toml", "policy-gvisor.toml"} {
		path := filepath.Join("..", "..", "deploy", "base", "node", name)
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		p, err := policy.Parse(data, path)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := p.Check(profiles.Builtin()); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !p.UsesRuntime(profiles.RuntimeGVisor) {
			t.Errorf("%s: no route or profile sends pods to gVisor", name)
		}
		if p.Mode != policy.ModeEnforce {
			t.Errorf("%s: mode %q, want %q", name, p.Mode, policy.ModeEnforce)
		}
	}
}
