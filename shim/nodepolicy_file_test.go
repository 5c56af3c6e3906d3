package shim

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/containerd/containerd/api/types/runc/options"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containerd/containerd/v2/pkg/shim"
	"google.golang.org/grpc/codes"
)

// Keep every test of this package off the machine's own node policy: a
// request without a policy reads $HARDENED_POLICY or DefaultPolicyPath.
func init() {
	os.Setenv("HARDENED_POLICY", "/nonexistent/hardened-test/policy.toml")
}

// Without a policy in the request, the node's policy file applies; without
// that file, the built-in default; a broken file refuses.
func TestCreateNodePolicyFile(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.toml")
	if err := os.WriteFile(good, []byte("default_profile = \"baseline\"\n"+testPolicy("enforce", "")), 0o644); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.toml")
	if err := os.WriteFile(bad, []byte("mode = \"enforce\"\nbogus = 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	t.Run("file present", func(t *testing.T) {
		t.Setenv("HARDENED_POLICY", good)
		ts := newTestService(t, nil)
		bundle := ts.bundle(t, "c1", defaultSpec(t, "c1", oci.WithProcessArgs("/bin/sh")))
		if _, err := ts.create(t, "c1", bundle, nil); err != nil {
			t.Fatal(err)
		}
		rep := readReport(t, bundle)
		if rep.Policy != good || rep.Profile != "baseline" {
			t.Fatalf("policy %q profile %q, want %s and its default_profile baseline", rep.Policy, rep.Profile, good)
		}
	})
	t.Run("file absent", func(t *testing.T) {
		t.Setenv("HARDENED_POLICY", filepath.Join(dir, "missing.toml"))
		if got := nodePolicySource(); !got.isDefault() {
			t.Fatalf("source = %v, want the built-in default", got)
		}
	})
	t.Run("file broken", func(t *testing.T) {
		t.Setenv("HARDENED_POLICY", bad)
		ts := newTestService(t, nil)
		bundle := ts.bundle(t, "c2", defaultSpec(t, "c2", oci.WithProcessArgs("/bin/sh")))
		_, err := ts.create(t, "c2", bundle, nil)
		wantCode(t, err, codes.InvalidArgument, "bogus")
		if len(ts.inner.creates) != 0 {
			t.Fatal("a container started under a broken node policy")
		}
	})
}

// Info (`ctr plugins inspect-runtime`, CRI's runtime features) reads the
// policy from the same place Create does: without options, the node file.
func TestTranslateInfoOptionsNodePolicyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "policy.toml")
	if err := os.WriteFile(path, []byte(testPolicy("enforce", "")), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HARDENED_POLICY", path)
	out, err := translateInfoOptions(context.Background(), nil, newPolicyCache())
	if err != nil {
		t.Fatal(err)
	}
	got, err := shim.ReadRuntimeOptions[*options.Options](bytesReader(out))
	if err != nil {
		t.Fatal(err)
	}
	if got.BinaryName != "/bin/true" || got.Root != "/run/test-runc" {
		t.Errorf("Info options %+v, want the node policy's runc (/bin/true, /run/test-runc)", got)
	}
}
