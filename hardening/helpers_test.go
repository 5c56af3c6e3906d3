package hardening

import (
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hardened-dev/hardened/profiles"
)

var (
	update              = flag.Bool("update", false, "rewrite the golden files in testdata/golden")
	generateDefaultSpec = flag.Bool("generate-default-spec", false, "regenerate testdata/specs/containerd-default.json with containerd's oci.GenerateSpec")
)

// profileNames are the built-in profiles, least strict first.
var profileNames = []string{"baseline", "hardened", "restricted", "strict"}

func mustProfile(t testing.TB, name string) *profiles.Profile {
	t.Helper()
	p, err := profiles.Builtin().Get(name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// cfgFor is the configuration of a typical node: runc, AppArmor enforced,
// the policy's default apparmor mode.
func cfgFor(t testing.TB, name string) Config {
	return Config{Profile: mustProfile(t, name), Host: Host{AppArmor: true}, Runtime: profiles.RuntimeRunc}
}

func loadSpec(t testing.TB, name string) *specs.Spec {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "specs", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var s specs.Spec
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatalf("failed to decode %s: %v", name, err)
	}
	return &s
}

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestGenerateContainerdDefaultSpec writes containerd v2.4.2's default spec
// (what `ctr run` starts from) once; run with -generate-default-spec.
func TestGenerateContainerdDefaultSpec(t *testing.T) {
	if !*generateDefaultSpec {
		t.Skip("run with -generate-default-spec to regenerate")
	}
	ctx := namespaces.WithNamespace(context.Background(), "default")
	s, err := oci.GenerateSpec(ctx, nil, &containers.Container{ID: "example"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join("testdata", "specs", "containerd-default.json"), append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}
